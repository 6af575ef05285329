"""`billing_ledger`: every session payment and refund, once each (keyed by Stripe's id).

A payment entry: amount, tip, the platform commission and the therapist's share; a refund entry the
same figures given back (positive numbers), with the commission returned pro rata.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.mongo import Database, Doc


@dataclass(frozen=True)
class LedgerEntry:
    """One money movement of a booking (kind `payment` or `refund`)."""

    id: str
    kind: str
    booking_id: str
    intent_id: str
    currency: str
    amount: int  # the service part
    tip: int
    commission: int
    therapist_share: int
    at: datetime
    receipt_url: str | None = None
    refund_id: str | None = None


def _doc(entry: LedgerEntry) -> Doc:
    return {"_id": entry.id, "kind": entry.kind, "bookingId": entry.booking_id, "intentId": entry.intent_id,
            "currency": entry.currency, "amount": entry.amount, "tip": entry.tip, "commission": entry.commission,
            "therapistShare": entry.therapist_share, "at": entry.at, "receiptUrl": entry.receipt_url,
            "refundId": entry.refund_id}


def _entry(doc: Doc) -> LedgerEntry:
    return LedgerEntry(id=doc["_id"], kind=doc["kind"], booking_id=doc["bookingId"], intent_id=doc["intentId"],
                       currency=doc["currency"], amount=doc["amount"], tip=doc["tip"], commission=doc["commission"],
                       therapist_share=doc["therapistShare"], at=doc["at"], receipt_url=doc.get("receiptUrl"),
                       refund_id=doc.get("refundId"))


class LedgerStore:
    """Named queries on `billing_ledger`."""

    def __init__(self, db: Database) -> None:
        self._ledger = db["billing_ledger"]

    async def ensure_indexes(self) -> None:
        """Entries are read per booking in time order."""
        await self._ledger.create_index([("bookingId", ASCENDING), ("at", ASCENDING)])

    async def record(self, entry: LedgerEntry) -> bool:
        """Write an entry; False when one with its id exists (it was recorded before)."""
        try:
            await self._ledger.insert_one(_doc(entry))
        except DuplicateKeyError:
            return False
        return True

    async def has(self, entry_id: str) -> bool:
        """True when the entry exists."""
        return await self._ledger.find_one({"_id": entry_id}, {"_id": 1}) is not None

    async def of_booking(self, booking_id: str) -> list[LedgerEntry]:
        """A booking's entries, oldest first."""
        cursor = self._ledger.find({"bookingId": booking_id}).sort([("at", ASCENDING), ("_id", ASCENDING)])
        return [_entry(doc) async for doc in cursor]


class RefundClaimStore:
    """`billing_refund_claims`: one per (booking, reason), taken before Stripe is asked to refund."""

    def __init__(self, db: Database) -> None:
        self._claims = db["billing_refund_claims"]

    async def ensure_indexes(self) -> None:
        """Unfinished claims are swept by age."""
        await self._claims.create_index([("refundId", ASCENDING), ("at", ASCENDING)])

    async def claim(self, key: str, booking_id: str, amount: int, tip: int, at: datetime) -> bool:
        """Take the claim; False when it was taken before."""
        try:
            await self._claims.insert_one({"_id": key, "bookingId": booking_id, "amount": amount, "tip": tip,
                                           "refundId": None, "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def taken(self, keys: list[str]) -> set[str]:
        """Those of `keys` claimed already."""
        if not keys:
            return set()
        return {doc["_id"] async for doc in self._claims.find({"_id": {"$in": keys}}, {"_id": 1})}

    async def done(self, key: str, refund_id: str) -> None:
        """The refund exists at Stripe."""
        await self._claims.update_one({"_id": key}, {"$set": {"refundId": refund_id}})

    async def unfinished(self, before: datetime, limit: int = 50) -> list[tuple[str, str, int, int, datetime]]:
        """(key, booking id, amount, tip, taken at) of claims whose refund was not confirmed (a process died)."""
        cursor = self._claims.find({"refundId": None, "at": {"$lt": before}}).limit(limit)
        return [(doc["_id"], doc["bookingId"], doc["amount"], doc["tip"], doc["at"]) async for doc in cursor]

    async def take_over(self, key: str, taken_at: datetime, now: datetime) -> bool:
        """Take an abandoned claim (compare-and-set on its time): one process finishes it."""
        result = await self._claims.update_one({"_id": key, "refundId": None, "at": taken_at}, {"$set": {"at": now}})
        return result.matched_count == 1
