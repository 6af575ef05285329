"""subscription:*: one subscription per user, stored as Stripe last reported it, pushed on every change."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from clock import Clock
from errors import Conflict, NotFound, PreconditionFailed
from handlers.auth import User
from handlers.billing.catalog import PlanCatalog
from handlers.billing.customers import Customers
from handlers.billing.invoices import Invoices
from handlers.publisher import Publisher
from stores.billing.requests import RequestStore
from stores.billing.stripe_api import StripeGateway
from stores.billing.subscriptions import InvoiceRecord, SubscriptionRecord, SubscriptionStore

NAMESPACE = "/billing"
Obj = dict[str, Any]
LIVE = ("active", "trialing", "past_due", "incomplete", "unpaid")


def when(seconds: Any) -> datetime | None:
    """A Stripe timestamp as an aware datetime."""
    return datetime.fromtimestamp(int(seconds), timezone.utc) if seconds else None


def _item(obj: Obj) -> Obj:
    items = (obj.get("items") or {}).get("data") or []
    return items[0] if items else {}


def subscription_record(obj: Obj, user_id: str) -> SubscriptionRecord:
    """Stripe's subscription as stored (the period from the subscription, or its item in newer API versions)."""
    item = _item(obj)
    plan = obj.get("plan") or item.get("plan") or {}
    period = {key: obj.get(key) or item.get(key) for key in ("current_period_start", "current_period_end")}
    invoice = obj.get("latest_invoice")
    return SubscriptionRecord(
        id=obj["id"], user_id=user_id, plan_id=plan.get("id", ""), item_id=item.get("id"), status=obj["status"],
        amount=int(plan.get("amount") or 0), currency=plan.get("currency", ""), interval=plan.get("interval", ""),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        cancel_reason=(obj.get("metadata") or {}).get("cancel_reason") or None,
        current_period_start=when(period["current_period_start"]),
        current_period_end=when(period["current_period_end"]), canceled_at=when(obj.get("canceled_at")),
        latest_invoice_id=invoice.get("id") if isinstance(invoice, dict) else invoice,
        created_at=datetime.fromtimestamp(int(obj.get("created") or obj.get("start_date") or 0), timezone.utc),
        metered=plan.get("usage_type") == "metered")


class Subscriptions:
    """The rules of subscriptions; Stripe holds the truth, careline its last reading."""

    def __init__(self, store: SubscriptionStore, requests: RequestStore, customers: Customers, catalog: PlanCatalog,
                 invoices: Invoices, gateway: StripeGateway, publisher: Publisher, clock: Clock) -> None:
        self.store = store
        self.requests = requests
        self.customers = customers
        self.catalog = catalog
        self.invoices = invoices
        self.gateway = gateway
        self.publisher = publisher
        self.clock = clock

    async def current(self, user: User) -> SubscriptionRecord | None:
        """subscription:get: the caller's newest subscription (None before the first)."""
        return await self.store.latest(user.id)

    async def create(self, user: User, plan_id: str, payment_method_id: str | None,
                     request_id: str) -> SubscriptionRecord:
        """subscription:create, idempotent by requestId; the first invoice is charged at once."""
        fingerprint = hashlib.sha256(f"{plan_id}|{payment_method_id}".encode()).hexdigest()
        done, claimed = await self.requests.claim(user.id, "subscription", request_id, fingerprint, self.clock())
        if not claimed:
            found = await self.store.get(done) if done else None
            if found is None:
                raise Conflict("This request is still being handled; try again shortly")
            return found
        try:
            record = await self._subscribe(user, plan_id, payment_method_id, request_id)
        except BaseException:
            await self.requests.forget(user.id, "subscription", request_id)
            raise
        await self.requests.finish(user.id, "subscription", request_id, record.id)
        return record

    async def _subscribe(self, user: User, plan_id: str, method_id: str | None, request_id: str,
                         ) -> SubscriptionRecord:
        if await self.catalog.plan(plan_id) is None:
            raise NotFound("No such plan")
        existing = await self.store.latest(user.id)
        if existing is not None and existing.status in LIVE:
            raise PreconditionFailed("You already have a subscription; change its plan instead")
        customer = await self.customers.of(user.id)
        if method_id is not None:
            await self.customers.owned_method(user.id, method_id)
            await self.gateway.set_default_method(customer, method_id)
        obj = await self.gateway.create_subscription(customer, plan_id, user.id,
                                                     f"careline-subscription-{user.id}-{request_id}")
        return await self.sync(obj, user.id)

    async def change(self, user: User, plan_id: str) -> SubscriptionRecord:
        """subscription:change: another plan, prorated (the difference shows on the next invoice)."""
        record = await self._live(user)
        if await self.catalog.plan(plan_id) is None:
            raise NotFound("No such plan")
        if record.plan_id == plan_id:
            return record
        obj = await self.gateway.update_subscription(record.id, {"items": [{"id": record.item_id, "plan": plan_id}]})
        return await self.sync(obj, user.id)

    async def cancel(self, user: User, at_period_end: bool, reason: str | None) -> SubscriptionRecord:
        """subscription:cancel: at the end of the paid period, or now."""
        record = await self._live(user)
        metadata = {"cancel_reason": reason or ""}
        if at_period_end:
            obj = await self.gateway.update_subscription(record.id, {"cancel_at_period_end": True,
                                                                     "metadata": metadata})
        else:
            await self.gateway.update_subscription(record.id, {"metadata": metadata})
            obj = await self.gateway.cancel_subscription(record.id)
        return await self.sync(obj, user.id, reason)

    async def reactivate(self, user: User) -> SubscriptionRecord:
        """subscription:reactivate: undo a pending cancel-at-period-end (only then)."""
        record = await self._live(user)
        if not record.cancel_at_period_end:
            raise PreconditionFailed("Only a subscription set to end at the period's end can be reactivated")
        obj = await self.gateway.update_subscription(record.id, {"cancel_at_period_end": False,
                                                                 "metadata": {"cancel_reason": ""}})
        return await self.sync(obj, user.id)

    async def _live(self, user: User) -> SubscriptionRecord:
        record = await self.store.latest(user.id)
        if record is None or record.status not in LIVE:
            raise PreconditionFailed("You have no active subscription")
        fresh = await self.gateway.subscription(record.id)
        return await self.sync(fresh, user.id)

    async def sync(self, obj: Obj, user_id: str | None = None, reason: str | None = None) -> SubscriptionRecord:
        """Store Stripe's current state of a subscription, its latest invoice too, and push both if changed.

        The cancel reason is careline's own when Stripe does not keep the metadata (localstripe).
        """
        user_id = user_id or await self.customers.store.user_of(str(obj.get("customer")))  # never metadata
        if not user_id:
            raise NotFound("A subscription of no careline user")
        record = subscription_record(obj, user_id)
        before = await self.store.get(record.id)
        cancelling = record.cancel_at_period_end or record.status == "canceled"
        kept = reason or record.cancel_reason or (before.cancel_reason if before else None)
        record = replace(record, cancel_reason=kept if cancelling else None)
        await self.store.save(record)
        if before != record:
            await self.publisher.to_user(NAMESPACE, user_id, "subscription:updated", record)
        if record.latest_invoice_id:
            await self.invoices.sync(await self.gateway.invoice(record.latest_invoice_id), user_id)
        return record

    async def pay_invoice(self, user: User, invoice_id: str, payment_method_id: str | None) -> InvoiceRecord:
        """invoice:pay, then the invoice's subscription re-read (paying its first invoice activates it)."""
        record = await self.invoices.pay(user, invoice_id, payment_method_id)
        if record.subscription_id:
            await self.sync(await self.gateway.subscription(record.subscription_id), user.id)
        return record

    async def refresh(self, subscription_id: str) -> None:
        """Re-read a subscription from Stripe (a webhook said it changed)."""
        await self.sync(await self.gateway.subscription(subscription_id))
