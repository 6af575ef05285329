"""`billing_usage`: completed session minutes, one document per booking (so a repeat counts once)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.mongo import Database


@dataclass(frozen=True)
class UsageTotal:
    """A therapist's completed sessions in one billing period (`YYYY-MM`)."""

    therapist_id: str
    period: str
    minutes: int
    sessions: int


class UsageStore:
    """Named queries on `billing_usage`."""

    def __init__(self, db: Database) -> None:
        self._usage = db["billing_usage"]

    async def ensure_indexes(self) -> None:
        """Totals are read per therapist and period."""
        await self._usage.create_index([("therapistId", ASCENDING), ("period", ASCENDING)])

    async def record(self, booking_id: str, therapist_id: str, period: str, minutes: int, at: datetime) -> bool:
        """Count a completed session once; False when it was counted already."""
        try:
            await self._usage.insert_one({"_id": booking_id, "therapistId": therapist_id, "period": period,
                                          "minutes": minutes, "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def total(self, therapist_id: str, period: str) -> UsageTotal:
        """Minutes and sessions of one therapist in one period."""
        cursor = self._usage.find({"therapistId": therapist_id, "period": period}, {"minutes": 1})
        minutes = [int(doc["minutes"]) async for doc in cursor]
        return UsageTotal(therapist_id, period, sum(minutes), len(minutes))
