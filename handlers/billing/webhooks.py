"""POST /webhooks/stripe: verify, keep in the inbox, answer at once; apply in the background, exactly once.

Applying an event never trusts the order events arrive in: it re-reads the object's current state from
Stripe and applies that (a late `payment_intent.created` after `succeeded` finds it succeeded).
Disputes, which careline cannot re-read from every peer, are ordered by the event's `created` time.
Inbox timing (leases, retry backoff) runs on the wall clock: it measures elapsed time, not business time.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from clock import utcnow
from errors import AppError, NotFound, Unavailable
from handlers.billing.appliers import BackgroundAppliers
from handlers.billing.customers import Customers
from handlers.billing.invoices import Invoices
from handlers.billing.payments import SessionPayments
from handlers.billing.subscriptions import Subscriptions
from handlers.jobs import QueueCounters
from stores.billing.inbox import InboxEvent, WebhookInbox
from stores.billing.stripe_api import StripeGateway, verify_event
from stores.group_commit import Backlogged

log = logging.getLogger("careline.billing.webhooks")
Obj = dict[str, Any]
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=10)
FACTS = ("payment_intent", "charge", "status", "customer", "subscription", "invoice")


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def inbox_event(event: Obj) -> InboxEvent:
    """What the inbox keeps of an event: ids and status, not the object."""
    obj = (event.get("data") or {}).get("object") or {}
    facts = {key: _id(obj.get(key)) for key in FACTS if obj.get(key) is not None}
    return InboxEvent(event["id"], event["type"], obj.get("id"), int(event.get("created") or 0), facts, 0)


class StripeWebhooks:
    """The inbox and its appliers."""

    def __init__(self, inbox: WebhookInbox, secret: str | None, gateway: StripeGateway, customers: Customers,
                 payments: SessionPayments, subscriptions: Subscriptions, invoices: Invoices) -> None:
        self.inbox = inbox
        self.secret = secret
        self.gateway = gateway
        self.customers = customers
        self.payments = payments
        self.subscriptions = subscriptions
        self.invoices = invoices
        self.appliers_queue = BackgroundAppliers(inbox, self._attempt)
        self.counters = QueueCounters()  # events applied, or put back for a retry (job monitoring)
        self.appliers: dict[str, Callable[[InboxEvent], Awaitable[None]]] = {
            "payment_intent": self._payment_intent, "charge.refunded": self._charge_refunded,
            "charge.dispute": self._dispute, "invoice": self._invoice, "customer.subscription": self._subscription,
            "setup_intent.succeeded": self._setup_intent,
        }

    async def receive(self, body: bytes, signature: str | None) -> bool:
        """Verify and keep one delivery; True when it was new. Applying starts in the background."""
        if not self.secret:
            raise Unavailable("Stripe webhooks are not configured")
        event = inbox_event(verify_event(body, signature, self.secret))
        try:
            created = await self.inbox.store(event, utcnow(), LEASE)
        except Backlogged:
            raise Unavailable("Too many webhook events are waiting to be stored; send again later") from None
        if created:  # stored first here: this process holds its lease already
            self.appliers_queue.submit(event)
        return created

    async def apply(self, event: InboxEvent) -> bool:
        """Apply one stored event if its lease is free (a retry, or one a stopped process left)."""
        if not await self.inbox.lease(event.id, utcnow(), LEASE):
            return False
        if not await self._attempt(event):
            return False
        await self.inbox.applied(event.id, utcnow())
        return True

    async def _attempt(self, event: InboxEvent) -> bool:
        """Apply an event this process holds the lease of (its caller marks it applied); a failure is
        recorded for a retry with backoff."""
        try:
            await self._apply(event)
        except Exception as exc:
            delay = min(timedelta(seconds=2 ** min(event.attempts, 12)), MAX_BACKOFF)
            if not isinstance(exc, AppError):
                log.exception("applying stripe event %s (%s) failed", event.id, event.type)
            await self.inbox.failed(event.id, utcnow() + delay, type(exc).__name__)
            self.counters.retried()
            return False
        self.counters.succeeded()
        return True

    async def _apply(self, event: InboxEvent) -> None:
        kind = event.type.rsplit(".", 1)[0]
        applier = self.appliers.get(event.type) or self.appliers.get(kind) or \
            self.appliers.get(event.type.split(".", 1)[0])
        if applier is not None and event.object_id:
            try:
                await applier(event)
            except NotFound:
                log.info("stripe event %s names nothing careline keeps", event.type)

    async def retry_due(self) -> None:
        """Apply every stored event still due (failed before, or left by a process that stopped)."""
        for event in await self.inbox.due(utcnow()):
            await self.apply(event)

    async def close(self) -> None:
        """Let running appliers finish; events not started are left to any process."""
        await self.appliers_queue.close()

    # -- appliers: each re-reads the current state ----------------------------------------------------

    async def _payment_intent(self, event: InboxEvent) -> None:
        await self.payments.settle(await self.gateway.payment_intent(str(event.object_id)))

    async def _charge_refunded(self, event: InboxEvent) -> None:
        intent_id = event.facts.get("payment_intent")
        if intent_id:
            await self.payments.refunds_changed(intent_id)

    async def _dispute(self, event: InboxEvent) -> None:
        await self.payments.disputed({"id": event.object_id, **event.facts}, event.created)

    async def _invoice(self, event: InboxEvent) -> None:
        await self.invoices.refresh(str(event.object_id))
        subscription_id = event.facts.get("subscription")
        if subscription_id:  # an invoice paid or failed moves its subscription (localstripe sends no update)
            await self.subscriptions.refresh(subscription_id)

    async def _subscription(self, event: InboxEvent) -> None:
        await self.subscriptions.refresh(str(event.object_id))

    async def _setup_intent(self, event: InboxEvent) -> None:
        await self.customers.attach_from(await self.gateway.setup_intent(str(event.object_id)))
