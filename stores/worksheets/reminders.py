"""The `worksheet_reminders` collection: due-soon and overdue reminders, claimed under a lease, sent once.

Same scheme as booking reminders (stores/booking/reminders.py): `claimableAt` is the due time until a loop
claims the reminder, then the end of its lease; every claim is a compare-and-set on the previous lease.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING

from stores.mongo import Database, Doc, new_id

CANDIDATES = 10  # due reminders one claim looks at before asking again


@dataclass(frozen=True)
class AssignmentReminder:
    """One reminder (`kind` "due_soon" or "overdue") of one assignment, claimed under `lease`."""

    id: str
    assignment_id: str
    kind: str
    due_at: datetime
    lease: str | None


def _reminder(doc: Doc) -> AssignmentReminder:
    return AssignmentReminder(id=doc["_id"], assignment_id=doc["assignmentId"], kind=doc["kind"],
                              due_at=doc["dueAt"], lease=doc.get("lease"))


class AssignmentReminderStore:
    """Named queries on `worksheet_reminders`."""

    def __init__(self, db: Database) -> None:
        self._reminders = db["worksheet_reminders"]

    async def ensure_indexes(self) -> None:
        """Due reminders in order."""
        await self._reminders.create_index([("sent", ASCENDING), ("claimableAt", ASCENDING)])

    async def schedule(self, assignment_id: str, due: dict[str, datetime]) -> None:
        """One reminder per kind in `due` (kind -> when); scheduling again changes nothing."""
        for kind, due_at in due.items():
            doc = {"assignmentId": assignment_id, "kind": kind, "dueAt": due_at, "claimableAt": due_at,
                   "sent": False, "attempts": 0}
            await self._reminders.update_one({"_id": f"{assignment_id}:{kind}"}, {"$setOnInsert": doc}, upsert=True)

    async def claim(self, now: datetime, lease: timedelta) -> AssignmentReminder | None:
        """Take the earliest due reminder (never claimed, or its lease ran out) for `lease`; None when none is."""
        cursor = self._reminders.find({"sent": False, "claimableAt": {"$lte": now}})
        for doc in await cursor.sort("claimableAt", ASCENDING).limit(CANDIDATES).to_list():
            taken = {"claimableAt": now + lease, "lease": new_id()}
            result = await self._reminders.update_one({"_id": doc["_id"], "lease": doc.get("lease"), "sent": False},
                                                      {"$set": taken, "$inc": {"attempts": 1}})
            if result.matched_count == 1:
                return _reminder({**doc, **taken})
        return None

    async def finish(self, reminder: AssignmentReminder, now: datetime, outcome: str) -> bool:
        """Mark a claimed reminder done (`sent` or `skipped`), only while our lease holds it."""
        result = await self._reminders.update_one({"_id": reminder.id, "lease": reminder.lease, "sent": False},
                                                  {"$set": {"sent": True, "outcome": outcome, "sentAt": now}})
        return result.modified_count == 1
