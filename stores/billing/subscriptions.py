"""`billing_subscriptions` and `billing_invoices`: Stripe's objects as last read, per careline user."""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING

from stores.mongo import Collection, Database, Doc

T = TypeVar("T")


@dataclass(frozen=True)
class SubscriptionRecord:
    """A user's subscription as Stripe last reported it (amounts in minor units)."""

    id: str
    user_id: str
    plan_id: str
    item_id: str | None
    status: str
    amount: int
    currency: str
    interval: str
    cancel_at_period_end: bool
    cancel_reason: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    canceled_at: datetime | None
    latest_invoice_id: str | None
    created_at: datetime
    metered: bool = False


@dataclass(frozen=True)
class InvoiceRecord:
    """An invoice of a user as Stripe last reported it."""

    id: str
    user_id: str
    subscription_id: str | None
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    attempt_count: int
    hosted_invoice_url: str | None
    receipt_url: str | None
    created_at: datetime


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _doc(record: Any) -> Doc:
    return {("_id" if f.name == "id" else _camel(f.name)): getattr(record, f.name) for f in fields(record)}


def _record(kind: type[T], doc: Doc) -> T:
    values = {f.name: doc.get("_id" if f.name == "id" else _camel(f.name)) for f in fields(kind)}  # type: ignore[arg-type]
    return kind(**values)


async def _save(collection: Collection, record: Any) -> None:
    doc = _doc(record)
    await collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)


class SubscriptionStore:
    """Named queries on `billing_subscriptions`."""

    def __init__(self, db: Database) -> None:
        self._subscriptions = db["billing_subscriptions"]

    async def ensure_indexes(self) -> None:
        """A user's subscriptions, newest first."""
        await self._subscriptions.create_index([("userId", ASCENDING), ("createdAt", DESCENDING)])

    async def save(self, record: SubscriptionRecord) -> None:
        """Store Stripe's current state of a subscription."""
        await _save(self._subscriptions, record)

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        """One subscription."""
        doc = await self._subscriptions.find_one({"_id": subscription_id})
        return _record(SubscriptionRecord, doc) if doc else None

    async def latest(self, user_id: str) -> SubscriptionRecord | None:
        """The user's newest subscription."""
        cursor = self._subscriptions.find({"userId": user_id}).sort("createdAt", DESCENDING).limit(1)
        docs = await cursor.to_list()
        return _record(SubscriptionRecord, docs[0]) if docs else None


class InvoiceStore:
    """Named queries on `billing_invoices`."""

    def __init__(self, db: Database) -> None:
        self._invoices = db["billing_invoices"]

    async def ensure_indexes(self) -> None:
        """A user's invoices, newest first."""
        await self._invoices.create_index([("userId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)])

    async def save(self, record: InvoiceRecord) -> None:
        """Store Stripe's current state of an invoice."""
        await _save(self._invoices, record)

    async def get(self, invoice_id: str) -> InvoiceRecord | None:
        """One invoice."""
        doc = await self._invoices.find_one({"_id": invoice_id})
        return _record(InvoiceRecord, doc) if doc else None

    async def page(self, user_id: str, before: tuple[datetime, str] | None, limit: int) -> list[InvoiceRecord]:
        """A user's invoices, newest first, after a cursor position (same time: smaller ids next)."""
        found: list[InvoiceRecord] = []
        if before is not None:
            found = await self._sorted({"userId": user_id, "createdAt": before[0], "_id": {"$lt": before[1]}}, limit)
        if len(found) < limit:
            query: Doc = {"userId": user_id}
            if before is not None:
                query["createdAt"] = {"$lt": before[0]}
            found += await self._sorted(query, limit - len(found))
        return found

    async def _sorted(self, query: Doc, limit: int) -> list[InvoiceRecord]:
        cursor = self._invoices.find(query).sort([("createdAt", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [_record(InvoiceRecord, doc) async for doc in cursor]
