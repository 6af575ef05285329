"""Billing's notifications: a failed invoice payment to its user, a disputed session payment to the admins.

Neutral words only: no amounts, card details or session details.
"""
from __future__ import annotations

from handlers.events import EventBus, InvoicePaymentFailed, PaymentDisputed
from handlers.notifications.handler import NotificationHandler


class BillingRules:
    """Domain events of billing turned into notifications (each once, by dedupe key)."""

    def __init__(self, notifications: NotificationHandler) -> None:
        self._notifications = notifications

    async def invoice_failed(self, event: InvoicePaymentFailed) -> None:
        """The user hears that a payment did not go through (once per invoice and attempt)."""
        await self._notifications.notify(
            event.user_id, category="billing", title="Payment failed",
            body="We could not collect a payment. Please check your payment method in billing.",
            data={"invoiceId": event.invoice_id},
            dedupe_key=f"invoice.failed:{event.invoice_id}:{event.attempt}")

    async def payment_disputed(self, event: PaymentDisputed) -> None:
        """Every admin hears of a dispute and of each change of its status."""
        for admin_id in event.admin_ids:
            await self._notifications.notify(
                admin_id, category="billing", title="Payment disputed", body=f"Dispute status: {event.status}",
                data={"bookingId": event.booking_id, "disputeId": event.dispute_id},
                dedupe_key=f"dispute:{event.dispute_id}:{event.status}")


def subscribe(bus: EventBus, notifications: NotificationHandler) -> BillingRules:
    """Wire billing's rules to the bus."""
    rules = BillingRules(notifications)
    bus.subscribe(InvoicePaymentFailed, rules.invoice_failed)
    bus.subscribe(PaymentDisputed, rules.payment_disputed)
    return rules
