"""The /billing namespace (CONTRACT §7): plans, cards, subscriptions, invoices, session payments, usage."""
from __future__ import annotations

from typing import Any

from errors import Unavailable
from handlers.auth import User
from handlers.billing.feature import BillingFeature
from realtime.base import BaseNamespace, RequestSpec, request
from realtime.schemas.billing import (
    CancelSubscription,
    CardListOut,
    ChangeSubscription,
    CreateSubscription,
    InvoiceOut,
    InvoicePageOut,
    ListInvoices,
    PayAnswerOut,
    PayBooking,
    PayInvoice,
    PaymentMethodRef,
    PaymentOut,
    PlanListOut,
    RefundOut,
    RefundPayment,
    SetupOut,
    SubscriptionOut,
    UsageOut,
    UsageQuery,
)
from realtime.schemas.booking import BookingRef
from realtime.schemas.common import DocumentLinkOut, Empty

Payload = dict[str, Any]
class BillingNamespace(BaseNamespace[BillingFeature]):
    """Thin transport over the billing handlers; every request answers `unavailable` without Stripe."""

    path = "/billing"
    emits = {"payment:updated": PaymentOut, "subscription:updated": SubscriptionOut, "invoice:updated": InvoiceOut}

    async def answer(self, event: str, spec: RequestSpec | None, sid: str, user: User, args: tuple[Any, ...]) -> Any:
        """Billing requests need Stripe configured."""
        if spec is not None and spec.event not in BaseNamespace.requests and not self.handler.enabled:
            raise Unavailable("Billing is not available on this server")
        return await super().answer(event, spec, sid, user, args)

    @request("plan:list", Empty, ack=PlanListOut, rate=(20, 2.0))
    async def plan_list(self, sid: str, user: User, payload: Payload) -> Any:
        """The plans on offer."""
        return await self.handler.parts.plans.plans()

    @request("payment-method:setup", Empty, ack=SetupOut, rate=(10, 0.5))
    async def setup_method(self, sid: str, user: User, payload: Payload) -> Any:
        """A SetupIntent client secret for Stripe Elements."""
        return await self.handler.parts.methods.setup(user)

    @request("payment-method:list", Empty, ack=CardListOut)
    async def list_methods(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's saved cards."""
        return await self.handler.parts.methods.cards(user)

    @request("payment-method:set-default", PaymentMethodRef, rate=(10, 1.0))
    async def default_method(self, sid: str, user: User, payload: Payload) -> Any:
        """Charge invoices to this card."""
        await self.handler.parts.methods.set_default(user, **payload)

    @request("payment-method:remove", PaymentMethodRef, rate=(10, 1.0))
    async def remove_method(self, sid: str, user: User, payload: Payload) -> Any:
        """Remove one of the caller's cards."""
        await self.handler.parts.methods.remove(user, **payload)

    @request("subscription:get", Empty, ack=SubscriptionOut, nullable=True)
    async def get_subscription(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's subscription, or null."""
        return await self.handler.parts.subscriptions.current(user)

    @request("subscription:create", CreateSubscription, ack=SubscriptionOut, rate=(10, 1.0), idempotency="handler")
    async def create_subscription(self, sid: str, user: User, payload: Payload) -> Any:
        """Subscribe to a plan."""
        return await self.handler.parts.subscriptions.create(user, **payload)

    @request("subscription:change", ChangeSubscription, ack=SubscriptionOut, rate=(10, 1.0))
    async def change_subscription(self, sid: str, user: User, payload: Payload) -> Any:
        """Move to another plan (prorated)."""
        return await self.handler.parts.subscriptions.change(user, **payload)

    @request("subscription:cancel", CancelSubscription, ack=SubscriptionOut, rate=(10, 1.0))
    async def cancel_subscription(self, sid: str, user: User, payload: Payload) -> Any:
        """Cancel now or at the period's end."""
        return await self.handler.parts.subscriptions.cancel(user, **payload)

    @request("subscription:reactivate", Empty, ack=SubscriptionOut, rate=(10, 1.0))
    async def reactivate_subscription(self, sid: str, user: User, payload: Payload) -> Any:
        """Undo a pending cancel at the period's end."""
        return await self.handler.parts.subscriptions.reactivate(user)

    @request("invoice:list", ListInvoices, ack=InvoicePageOut)
    async def list_invoices(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's invoices, newest first."""
        return await self.handler.parts.invoices.page(user, **payload)

    @request("invoice:pay", PayInvoice, ack=InvoiceOut, rate=(10, 1.0))
    async def pay_invoice(self, sid: str, user: User, payload: Payload) -> Any:
        """Retry an open invoice."""
        return await self.handler.parts.subscriptions.pay_invoice(user, **payload)

    @request("booking:pay", PayBooking, ack=PayAnswerOut, rate=(10, 1.0), roles=("client",))
    async def pay_booking(self, sid: str, user: User, payload: Payload) -> Any:
        """Pay for a booked session (price + tip)."""
        return await self.handler.parts.payments.pay(user, **payload)

    @request("booking:receipt", BookingRef, ack=DocumentLinkOut, rate=(10, 1.0))
    async def booking_receipt(self, sid: str, user: User, payload: Payload) -> Any:
        """A PDF receipt of a paid session (its client or therapist), downloadable once within 5 minutes."""
        return await self.handler.parts.receipts.receipt(user, payload["booking_id"])

    @request("payment:refund", RefundPayment, ack=RefundOut, rate=(10, 1.0), roles=("admin",))
    async def refund_payment(self, sid: str, user: User, payload: Payload) -> Any:
        """Refund a session payment (any amount up to what is left)."""
        return await self.handler.parts.payments.refund(user, **payload)

    @request("billing:usage", UsageQuery, ack=UsageOut, roles=("therapist",))
    async def usage(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's completed session minutes in a month."""
        return await self.handler.parts.usage.total(user, **payload)
