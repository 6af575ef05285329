"""The `availability` collection: one document per therapist (weekly rules, overrides, policy)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from clock import utcnow
from errors import Conflict
from stores.mongo import Database, Doc

CAS_ATTEMPTS = 20  # each failed compare-and-set means another write to the document got through


@dataclass(frozen=True)
class Rules:
    """When a therapist takes sessions: local hours ("HH:MM" in `timezone`), session shape, notice and horizon.

    `weekly` items are `{weekday, start, end}`, `overrides` items `{date, start, end, unavailable}`.
    """

    timezone: str
    weekly: list[dict[str, Any]]
    overrides: list[dict[str, Any]]
    session_minutes: int
    buffer_minutes: int
    min_notice_minutes: int
    max_days_ahead: int

    @property
    def session(self) -> timedelta:
        """The length of one session."""
        return timedelta(minutes=self.session_minutes)

    @property
    def buffer(self) -> timedelta:
        """The free time kept around every session."""
        return timedelta(minutes=self.buffer_minutes)


@dataclass(frozen=True)
class Availability:
    """A therapist's availability as stored: the rules and the booking policy.

    `policy` is `{refund_tiers: [{min_hours_before, percent}], confirm_within_hours}`. `calendar_version`
    counts changes of the therapist's bookings (what cached busy times are checked against).
    """

    therapist_id: str
    rules: Rules
    policy: dict[str, Any]
    updated_at: datetime
    calendar_version: int = 0


def _availability(doc: Doc) -> Availability:
    rules = Rules(timezone=doc["timezone"], weekly=doc["weekly"], overrides=doc.get("overrides", []),
                  session_minutes=doc["session_minutes"], buffer_minutes=doc["buffer_minutes"],
                  min_notice_minutes=doc["min_notice_minutes"], max_days_ahead=doc["max_days_ahead"])
    return Availability(therapist_id=doc["_id"], rules=rules, policy=doc["policy"], updated_at=doc["updated_at"],
                        calendar_version=int(doc.get("calendar_version") or 0))


class AvailabilityStore:
    """Named queries on `availability` (keyed by therapist id)."""

    def __init__(self, db: Database) -> None:
        self._availability = db["availability"]

    async def ensure_indexes(self) -> None:
        """Nothing beyond `_id`: every query is by therapist id."""

    async def get(self, therapist_id: str) -> Availability | None:
        """A therapist's availability, or None when they have set none."""
        doc = await self._availability.find_one({"_id": therapist_id})
        return _availability(doc) if doc else None

    async def replace(self, therapist_id: str, values: dict[str, Any]) -> tuple[Availability | None, Availability]:
        """Store a therapist's availability (every field; the calendar version survives); returns (previous, current).

        The write is a compare-and-set on the `calendar_version` just read (by `_id`: findAndModify would scan
        the collection on SecantusDB, docs/storage.md), so `previous` is exactly the document replaced.
        """
        doc: Doc = {**values, "updated_at": utcnow()}
        for _ in range(CAS_ATTEMPTS):
            before = await self._availability.find_one({"_id": therapist_id})
            if before is None:
                try:
                    await self._availability.insert_one({"_id": therapist_id, **doc, "calendar_version": 1})
                except DuplicateKeyError:
                    continue  # a concurrent first write won: replace that one
                return None, _availability({"_id": therapist_id, **doc, "calendar_version": 1})
            result = await self._availability.update_one(
                {"_id": therapist_id, "calendar_version": before.get("calendar_version")},
                {"$set": doc, "$inc": {"calendar_version": 1}})
            if result.matched_count == 1:
                version = int(before.get("calendar_version") or 0) + 1
                return _availability(before), _availability({"_id": therapist_id, **doc, "calendar_version": version})
        raise Conflict("The availability keeps changing; try again")

    async def bump(self, therapist_id: str) -> None:
        """Count a change of the therapist's bookings (what cached busy times are checked against)."""
        await self._availability.update_one({"_id": therapist_id}, {"$inc": {"calendar_version": 1}})

