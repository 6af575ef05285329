"""`billing_booking_payments`: one document per paid-for booking, its current attempt and what was refunded.

Every change is a compare-and-set on `rev`, so the direct answer of a payment and its webhook, or two
processes, move it once: only the caller whose write matched acts on the change.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from errors import Conflict
from stores.mongo import Database, Doc, insert_or_existing

CAS_ATTEMPTS = 20
SETTLED = ("paid", "partially_refunded", "refunded")


@dataclass(frozen=True)
class BookingPayment:
    """A booking's payment: service `amount` and `tip` in minor units, the platform's `commission` of the amount."""

    id: str  # the booking id
    client_id: str
    therapist_id: str
    request_id: str
    status: str  # pending | paid | failed | partially_refunded | refunded
    amount: int
    tip: int
    currency: str
    commission: int
    created_at: datetime
    updated_at: datetime
    intent_id: str | None = None
    refunded: int = 0
    refunded_tip: int = 0
    refund_ids: tuple[str, ...] = ()
    receipt_url: str | None = None
    dispute: str | None = None  # None, or the dispute's status (needs_response, won, lost, ...)
    dispute_at: int = 0  # Stripe's `created` of the last dispute event applied
    rev: int = 0

    @property
    def total(self) -> int:
        """What the client pays: the service amount plus the tip."""
        return self.amount + self.tip


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_NAMES = {f.name: _camel(f.name) for f in fields(BookingPayment) if f.name != "id"}


def _doc(values: dict[str, Any]) -> Doc:
    return {("_id" if key == "id" else _NAMES[key]): list(value) if isinstance(value, tuple) else value
            for key, value in values.items()}


def _record(doc: Doc) -> BookingPayment:
    known = {name: doc[stored] for name, stored in _NAMES.items() if stored in doc}
    known["refund_ids"] = tuple(known.get("refund_ids") or ())
    return BookingPayment(id=doc["_id"], **known)


class BookingPaymentStore:
    """Named queries on `billing_booking_payments`."""

    def __init__(self, db: Database) -> None:
        self._payments = db["billing_booking_payments"]

    async def ensure_indexes(self) -> None:
        """Webhooks find a payment by its PaymentIntent."""
        await self._payments.create_index([("intentId", ASCENDING)])

    async def get(self, booking_id: str) -> BookingPayment | None:
        """A booking's payment."""
        doc = await self._payments.find_one({"_id": booking_id})
        return _record(doc) if doc else None

    async def by_intent(self, intent_id: str) -> BookingPayment | None:
        """The payment whose current attempt is this PaymentIntent."""
        doc = await self._payments.find_one({"intentId": intent_id})
        return _record(doc) if doc else None

    async def start(self, payment: BookingPayment) -> tuple[BookingPayment, bool]:
        """Store a booking's first attempt; (the stored one, False) when the booking has one already."""
        doc, created = await insert_or_existing(self._payments, _doc(vars(payment)), {"_id": payment.id})
        return _record(doc), created

    async def move(self, current: BookingPayment, statuses: tuple[str, ...], changes: dict[str, Any],
                   ) -> BookingPayment | None:
        """Apply `changes` while the payment is in one of `statuses`; None when it is not (or no longer)."""
        record: BookingPayment | None = current
        for _ in range(CAS_ATTEMPTS):
            if record is None or record.status not in statuses:
                return None
            query = {"_id": record.id, "rev": record.rev, "status": {"$in": list(statuses)}}
            result = await self._payments.update_one(query, {"$set": _doc(changes), "$inc": {"rev": 1}})
            if result.matched_count == 1:
                return replace(record, **changes, rev=record.rev + 1)
            record = await self.get(current.id)
        raise Conflict("The payment keeps changing; try again")

    async def add_refund(self, booking_id: str, refund_id: str, amount: int, tip: int,
                         now: datetime) -> tuple[BookingPayment, bool]:
        """Count a refund once: (the payment, False when it was counted before)."""
        for _ in range(CAS_ATTEMPTS):
            record = await self.get(booking_id)
            if record is None:
                raise Conflict("No such payment")
            if refund_id in record.refund_ids:
                return record, False
            refunded = record.refunded + amount
            status = "refunded" if refunded >= record.total else "partially_refunded"
            moved = await self.move(record, (record.status,), {"refunded": refunded, "status": status,
                                                               "refunded_tip": record.refunded_tip + tip,
                                                               "refund_ids": (*record.refund_ids, refund_id),
                                                               "updated_at": now})
            if moved is not None:
                return moved, True
        raise Conflict("The payment keeps changing; try again")
