"""The `availability` collection: one document per therapist (weekly rules, overrides, policy)."""
from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument

from stores.mongo import Database, Doc, utcnow


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
        """Store a therapist's availability (every field; the calendar version survives); returns (previous, current)."""
        doc: Doc = {**values, "updated_at": utcnow()}
        before = await self._availability.find_one_and_update(
            {"_id": therapist_id}, {"$set": doc, "$inc": {"calendar_version": 1}}, upsert=True,
            return_document=ReturnDocument.BEFORE)
        return (_plain(before) if before else None), {**doc, "therapist_id": therapist_id}

    async def bump(self, therapist_id: str) -> None:
        """Count a change of the therapist's bookings (what cached busy times are checked against)."""
        await self._availability.update_one({"_id": therapist_id}, {"$inc": {"calendar_version": 1}})


def _plain(doc: Doc) -> dict[str, Any]:
    values = {key: value for key, value in doc.items() if key != "_id"}
    return {**values, "therapist_id": doc["_id"]}
