"""The `booking_reminders` collection: durable reminders claimed under a lease, sent once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING

from stores.mongo import Database, Doc, new_id

CANDIDATES = 10  # due reminders one claim looks at before asking again
ROUNDS = 5  # queries one claim makes at most while other workers keep taking its candidates


@dataclass(frozen=True)
class Reminder:
    """One reminder of one booking (`kind` "24h" or "1h"), claimed by a worker under `lease`."""

    id: str
    booking_id: str
    kind: str
    due_at: datetime
    session_start: datetime
    lease: str | None
    attempts: int


def _reminder(doc: Doc) -> Reminder:
    return Reminder(id=doc["_id"], booking_id=doc["bookingId"], kind=doc["kind"], due_at=doc["dueAt"],
                    session_start=doc["sessionStart"], lease=doc.get("lease"), attempts=doc.get("attempts", 0))


class ReminderStore:
    """Named queries on `booking_reminders`.

    `claimableAt` is the due time until a worker claims the reminder, then the end of its lease:
    one indexed range finds both never-claimed and abandoned reminders. Every claim sets a new `lease`,
    so "the lease I read is still there" means "nobody claimed it since".
    """

    def __init__(self, db: Database) -> None:
        self._reminders = db["booking_reminders"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._reminders.create_index([("sent", ASCENDING), ("claimableAt", ASCENDING)])
        await self._reminders.create_index([("bookingId", ASCENDING)])

    async def schedule(self, booking_id: str, session_start: datetime, due: dict[str, datetime]) -> None:
        """Replace the booking's unsent reminders with one per kind in `due` (kind -> due time)."""
        await self.remove(booking_id)
        for kind, due_at in due.items():
            doc = {"bookingId": booking_id, "kind": kind, "dueAt": due_at, "claimableAt": due_at,
                   "sessionStart": session_start, "sent": False, "attempts": 0}
            await self._reminders.update_one({"_id": f"{booking_id}:{kind}:{session_start.timestamp():.0f}"},
                                             {"$setOnInsert": doc}, upsert=True)

    async def remove(self, booking_id: str) -> None:
        """Forget the booking's unsent reminders."""
        await self._reminders.delete_many({"bookingId": booking_id, "sent": False})

    async def claim(self, now: datetime, lease: timedelta) -> Reminder | None:
        """Atomically take the earliest due reminder (never claimed, or its lease ran out) for `lease`.

        Due candidates come from the (sent, claimableAt) index; each is taken by a compare-and-set on the
        lease it had, an `_id`-routed update_one (findAndModify would scan the collection on SecantusDB,
        docs/storage.md). A candidate another worker took meanwhile fails the check; the next one is tried.
        """
        for _ in range(ROUNDS):
            cursor = self._reminders.find({"sent": False, "claimableAt": {"$lte": now}})
            due = await cursor.sort("claimableAt", ASCENDING).limit(CANDIDATES).to_list()
            for doc in due:
                taken = {"claimableAt": now + lease, "lease": new_id()}
                result = await self._reminders.update_one(
                    {"_id": doc["_id"], "lease": doc.get("lease"), "sent": False},
                    {"$set": taken, "$inc": {"attempts": 1}})
                if result.matched_count == 1:
                    return _reminder({**doc, **taken, "attempts": doc.get("attempts", 0) + 1})
            if len(due) < CANDIDATES:
                return None
        return None

    async def finish(self, reminder: Reminder, now: datetime, outcome: str) -> bool:
        """Mark a claimed reminder done (`sent` or `skipped`), only if our lease still holds it."""
        result = await self._reminders.update_one(
            {"_id": reminder.id, "lease": reminder.lease, "sent": False},
            {"$set": {"sent": True, "outcome": outcome, "sentAt": now}})
        return result.modified_count == 1

    async def of_booking(self, booking_id: str) -> list[Reminder]:
        """Every reminder of a booking (sent or not)."""
        cursor = self._reminders.find({"bookingId": booking_id}).sort("dueAt", ASCENDING)
        return [_reminder(doc) async for doc in cursor]
