"""The `availability` collection: one document per therapist (weekly rules, overrides, policy)."""
from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from errors import Conflict
from clock import utcnow
from stores.mongo import Database, Doc

CAS_ATTEMPTS = 20  # each failed compare-and-set means another write to the document got through


class AvailabilityStore:
    """Named queries on `availability` (keyed by therapist id)."""

    def __init__(self, db: Database) -> None:
        self._availability = db["availability"]

    async def ensure_indexes(self) -> None:
        """Nothing beyond `_id`: every query is by therapist id."""

    async def get(self, therapist_id: str) -> dict[str, Any] | None:
        """A therapist's availability (snake_case fields plus `updated_at`), or None."""
        doc = await self._availability.find_one({"_id": therapist_id})
        return _plain(doc) if doc else None

    async def replace(self, therapist_id: str, values: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Store a therapist's availability (every field; the calendar version survives); returns (previous, current).

        The write is a compare-and-set on the `calendar_version` just read (by `_id`: findAndModify would scan
        the collection on SecantusDB, docs/storage.md), so `previous` is exactly the document replaced.
        """
        doc: Doc = {**values, "updated_at": utcnow()}
        current = {**doc, "therapist_id": therapist_id}
        for _ in range(CAS_ATTEMPTS):
            before = await self._availability.find_one({"_id": therapist_id})
            if before is None:
                try:
                    await self._availability.insert_one({"_id": therapist_id, **doc, "calendar_version": 1})
                except DuplicateKeyError:
                    continue  # a concurrent first write won: replace that one
                return None, current
            result = await self._availability.update_one(
                {"_id": therapist_id, "calendar_version": before.get("calendar_version")},
                {"$set": doc, "$inc": {"calendar_version": 1}})
            if result.matched_count == 1:
                return _plain(before), current
        raise Conflict("The availability keeps changing; try again")

    async def bump(self, therapist_id: str) -> None:
        """Count a change of the therapist's bookings (what cached busy times are checked against)."""
        await self._availability.update_one({"_id": therapist_id}, {"$inc": {"calendar_version": 1}})


def _plain(doc: Doc) -> dict[str, Any]:
    values = {key: value for key, value in doc.items() if key != "_id"}
    return {**values, "therapist_id": doc["_id"]}
