"""invoice:list / invoice:pay and the invoices Stripe reports; a failed collection is told to the user."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from errors import NotFound, PreconditionFailed
from handlers.auth import User
from handlers.billing.customers import Customers, customer_of
from handlers.events import EventBus, InvoicePaymentFailed
from handlers.page import Page, read_time_cursor, time_cursor
from handlers.publisher import Publisher
from stores.billing.stripe_api import CardDeclined, StripeGateway, StripeRefused
from stores.billing.subscriptions import InvoiceRecord, InvoiceStore

NAMESPACE = "/billing"
Obj = dict[str, Any]


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def invoice_record(obj: Obj, user_id: str) -> InvoiceRecord:
    """Stripe's invoice as stored."""
    charge = obj.get("charge")
    return InvoiceRecord(
        id=obj["id"], user_id=user_id, subscription_id=_id(obj.get("subscription")), status=obj.get("status") or "",
        amount_due=int(obj.get("amount_due") or 0), amount_paid=int(obj.get("amount_paid") or 0),
        currency=obj.get("currency") or "", attempt_count=int(obj.get("attempt_count") or 0),
        hosted_invoice_url=obj.get("hosted_invoice_url"),
        receipt_url=charge.get("receipt_url") if isinstance(charge, dict) else None,
        created_at=datetime.fromtimestamp(int(obj.get("created") or obj.get("date") or 0), timezone.utc))


def failed(record: InvoiceRecord) -> bool:
    """An open invoice whose collection was tried and did not succeed."""
    return record.status == "open" and record.attempt_count > 0 and record.amount_paid < record.amount_due


class Invoices:
    """Invoices per user: read from careline's copy, paid through Stripe."""

    def __init__(self, store: InvoiceStore, customers: Customers, gateway: StripeGateway, publisher: Publisher,
                 bus: EventBus) -> None:
        self.store = store
        self.customers = customers
        self.gateway = gateway
        self.publisher = publisher
        self.bus = bus

    async def page(self, user: User, limit: int, cursor: str | None) -> Page[InvoiceRecord]:
        """invoice:list: the caller's invoices, newest first."""
        records = await self.store.page(user.id, read_time_cursor(cursor), limit + 1)
        more = len(records) > limit
        records = records[:limit]
        return Page(records, time_cursor(records[-1].created_at, records[-1].id) if more else None)

    async def pay(self, user: User, invoice_id: str, payment_method_id: str | None) -> InvoiceRecord:
        """invoice:pay: try an open invoice again, from another of the caller's cards if given."""
        customer = await self.customers.existing(user.id)
        obj = await self.gateway.invoice(invoice_id)
        if customer is None or customer_of(obj) != customer:
            raise NotFound("No such invoice")
        if obj.get("status") != "open":
            raise PreconditionFailed(f"A {obj.get('status')} invoice cannot be paid")
        if payment_method_id is not None:
            await self.customers.owned_method(user.id, payment_method_id)
            await self.gateway.set_default_method(customer, payment_method_id)
        try:
            await self.gateway.pay_invoice(invoice_id)
        except (CardDeclined, StripeRefused):
            pass  # the invoice as re-read below says what happened
        return await self.sync(await self.gateway.invoice(invoice_id), user.id)

    async def sync(self, obj: Obj, user_id: str | None = None) -> InvoiceRecord:
        """Store Stripe's current state of an invoice; push it if it changed; tell the user of a failed payment."""
        user_id = user_id or await self.customers.store.user_of(str(customer_of(obj)))
        if not user_id:
            raise NotFound("An invoice of no careline user")
        record = invoice_record(obj, user_id)
        before = await self.store.get(record.id)
        if before == record:
            return record
        await self.store.save(record)
        await self.publisher.to_user(NAMESPACE, user_id, "invoice:updated", record)
        if failed(record):
            await self.bus.publish(InvoicePaymentFailed(user_id, record.id, record.attempt_count))
        return record

    async def refresh(self, invoice_id: str) -> None:
        """Re-read an invoice from Stripe (a webhook said it changed)."""
        await self.sync(await self.gateway.invoice(invoice_id))

