"""Session payments: booking:pay, the ledger, refunds by the booking's policy, admin refunds, disputes.

A payment moves once per step whoever sees the step first (the request's own answer, a webhook, another
process): every move is a compare-and-set on the payment document, and ledger entries are keyed by
Stripe's ids. Refunds are claimed per (booking, reason) in the database before Stripe is asked, carry
that claim as their idempotency key, and are found again by it after a crash.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from clock import Clock
from errors import Conflict, NotFound, PreconditionFailed, RequestIdReused
from handlers.auth import User
from handlers.billing.customers import Customers
from handlers.billing.deltas import PayAnswer, RefundDone
from handlers.billing.money import commission, percent_of, pro_rata
from handlers.events import BookingChanged, BookingPaymentChanged, EventBus, PaymentDisputed
from handlers.publisher import Publisher
from stores.billing.ledger import LedgerEntry, LedgerStore, RefundClaimStore
from stores.billing.payments import SETTLED, BookingPayment, BookingPaymentStore
from stores.billing.stripe_api import CardDeclined, StripeGateway
from stores.booking.bookings import ACTIVE, BookingRecord, BookingStore
from stores.users import UserStore

NAMESPACE = "/billing"
Obj = dict[str, Any]
RETRY_CLAIMS_AFTER = timedelta(minutes=2)  # a refund claim without a refund this long belongs to a dead process
RECONCILE_GRACE = timedelta(minutes=2)  # a cancel's own refund has had this long to be claimed
RECONCILE_WINDOW = timedelta(days=7)  # how far back cancelled bookings are checked for a missed refund
RECONCILE_SECONDS = 60.0  # how often they are
FAILED = ("requires_payment_method", "canceled")


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _cancel_key(booking_id: str) -> str:
    """The claim (and Stripe idempotency) key of a booking's refund by policy."""
    return f"{booking_id}|cancelled"


class SessionPayments:
    """booking:pay, payment:refund, and what Stripe's payment and refund events mean for a booking."""

    def __init__(self, payments: BookingPaymentStore, ledger: LedgerStore, claims: RefundClaimStore,
                 bookings: BookingStore, customers: Customers, gateway: StripeGateway, publisher: Publisher,
                 bus: EventBus, users: UserStore, clock: Clock, rate: float) -> None:
        self.payments = payments
        self.ledger = ledger
        self.claims = claims
        self.bookings = bookings
        self.customers = customers
        self.gateway = gateway
        self.publisher = publisher
        self.bus = bus
        self.users = users
        self.clock = clock
        self.rate = rate

    # -- paying ------------------------------------------------------------------------------------

    async def pay(self, user: User, booking_id: str, payment_method_id: str, request_id: str,
                  tip_amount: int) -> PayAnswer:
        """booking:pay (the booking's client): price + tip, confirmed at once; 3-D Secure answers a secret."""
        booking = await self.bookings.get(booking_id)
        if booking is None or booking.client_id != user.id:
            raise NotFound("No such booking")
        price = booking.policy.get("price")
        if not price:
            raise PreconditionFailed("This session has no price")
        if booking.status not in ACTIVE:
            raise PreconditionFailed(f"A {booking.status} booking cannot be paid")
        customer, _card = await self.customers.owned_method(user.id, payment_method_id)
        record, mine = await self._attempt(booking, price, request_id, tip_amount)
        if mine:
            return await self._charge(record, customer, payment_method_id)
        if record.intent_id is None:
            raise Conflict("This request is still being handled; try again shortly")
        return await self._answer(record)

    async def _attempt(self, booking: BookingRecord, price: dict[str, Any], request_id: str,
                       tip: int) -> tuple[BookingPayment, bool]:
        """(the payment this request is about, True when this call is the one to charge it).

        Only the caller whose insert or compare-and-set wins charges: a new payment, or a retry after a
        failure (by another requestId, or by this one when it failed before a PaymentIntent existed).
        A repeat of a request answers what that request started.
        """
        now = self.clock()
        new = BookingPayment(id=booking.id, client_id=booking.client_id, therapist_id=booking.therapist_id,
                             request_id=request_id, status="pending", amount=int(price["amount"]), tip=tip,
                             currency=price["currency"], commission=commission(int(price["amount"]), self.rate),
                             created_at=now, updated_at=now)
        record, created = await self.payments.start(new)
        if created:
            await self._tell(record)
            return record, True
        same = record.request_id == request_id
        if same and record.tip != tip:
            raise RequestIdReused("This requestId was used with another payload")
        if same and (record.status != "failed" or record.intent_id is not None):
            return record, False
        if record.status != "failed":
            raise PreconditionFailed("This booking is paid" if record.status in SETTLED
                                     else "A payment of this booking is in progress")
        retried = await self.payments.move(record, ("failed",), {
            "request_id": request_id, "status": "pending", "tip": tip, "intent_id": None, "updated_at": now})
        if retried is None:
            raise PreconditionFailed("A payment of this booking is in progress")
        await self._tell(retried)
        return retried, True

    async def _charge(self, record: BookingPayment, customer: str, method_id: str) -> PayAnswer:
        """Create and confirm the PaymentIntent of an attempt (its id stored before it is confirmed)."""
        key = f"careline-pay-{record.id}-{record.request_id}"
        params = {"amount": record.total, "currency": record.currency, "customer": customer,
                  "payment_method": method_id,
                  "metadata": {"booking_id": record.id, "request_id": record.request_id, "tip": str(record.tip)}}
        try:
            intent = await self.gateway.create_payment_intent(params, key)
        except BaseException:
            await self._fail(record)
            raise
        moved = await self.payments.move(record, ("pending",), {"intent_id": intent["id"]})
        if moved is None:
            raise Conflict("The payment changed meanwhile; reload the booking")
        try:
            intent = await self.gateway.confirm_payment_intent(intent["id"], key + "-confirm")
        except CardDeclined:
            intent = await self.gateway.payment_intent(intent["id"])
        settled = await self.settle(intent)
        return self._answer_of(intent, settled or moved)

    async def _answer(self, record: BookingPayment) -> PayAnswer:
        """A repeated request's answer: the attempt's PaymentIntent as it is now."""
        assert record.intent_id is not None
        return self._answer_of(await self.gateway.payment_intent(record.intent_id), record)

    def _answer_of(self, intent: Obj, record: BookingPayment) -> PayAnswer:
        status = intent["status"]
        secret = intent.get("client_secret") if status == "requires_action" else None
        return PayAnswer(intent["id"], status, record.status, secret)

    async def _fail(self, record: BookingPayment) -> None:
        moved = await self.payments.move(record, ("pending",), {"status": "failed", "updated_at": self.clock()})
        if moved is not None:
            await self._tell(moved)

    # -- what a PaymentIntent's state means ----------------------------------------------------------

    async def settle(self, intent: Obj) -> BookingPayment | None:
        """Apply a PaymentIntent's current state to its booking's payment (any order, any number of times)."""
        booking_id = (intent.get("metadata") or {}).get("booking_id")
        record = await self.payments.get(booking_id) if booking_id else None
        if record is None or record.intent_id != intent["id"]:
            return None  # not a session payment, or an earlier attempt
        status = intent["status"]
        if status == "succeeded":
            return await self._paid(record, intent)
        if status in FAILED:
            moved = await self.payments.move(record, ("pending",), {"status": "failed", "updated_at": self.clock()})
            if moved is not None:
                await self._tell(moved)
            return moved or record
        return record

    async def _paid(self, record: BookingPayment, intent: Obj) -> BookingPayment:
        receipt = await self._receipt(intent)
        share = record.total - record.commission
        await self.ledger.record(LedgerEntry(
            id=f"payment:{intent['id']}", kind="payment", booking_id=record.id, intent_id=intent["id"],
            currency=record.currency, amount=record.amount, tip=record.tip, commission=record.commission,
            therapist_share=share, at=self.clock(), receipt_url=receipt))
        moved = await self.payments.move(record, ("pending", "failed"), {"status": "paid", "receipt_url": receipt,
                                                                         "updated_at": self.clock()})
        if moved is None:
            return await self.payments.get(record.id) or record
        await self._tell(moved)
        booking = await self.bookings.get(record.id)
        if booking is not None and booking.status == "cancelled":
            await self.refund_by_policy(booking)  # cancelled while the payment was under way
        return moved

    async def _receipt(self, intent: Obj) -> str | None:
        charge = intent.get("latest_charge")
        if isinstance(charge, str):
            charge = await self.gateway.charge(charge)
        return charge.get("receipt_url") if isinstance(charge, dict) else None

    async def _tell(self, record: BookingPayment, booking_moves: bool = True) -> None:
        """The booking's paymentStatus (and refunded amount) moves unless `booking_moves` is False (a change
        the booking does not show, such as a dispute); both parties get payment:updated."""
        if booking_moves:
            refunded = record.refunded if record.refund_ids else None
            await self.bus.deliver(BookingPaymentChanged(record.id, record.status, refunded))
        await asyncio.gather(*(self.publisher.to_user(NAMESPACE, party, "payment:updated", record)
                               for party in {record.client_id, record.therapist_id}))

    # -- refunds -----------------------------------------------------------------------------------

    async def booking_changed(self, event: BookingChanged) -> None:
        """A cancelled, paid booking is refunded by its policy (a no-show is not)."""
        if event.change == "cancelled":
            await self.refund_by_policy(event.booking)

    async def refund_by_policy(self, booking: BookingRecord) -> Obj | None:
        """The snapshotted tier's percent of the service amount (100 % when the therapist or an admin
        cancelled, as the booking recorded) plus the whole tip; once per booking. The refund made, or None
        (nothing due, or claimed before)."""
        record = await self.payments.get(booking.id)
        if record is None or record.status not in SETTLED or booking.refund is None:
            return None
        left = record.total - record.refunded  # an admin may have refunded part already
        tip = min(record.tip - record.refunded_tip, left)
        service = min(percent_of(record.amount, int(booking.refund["percent"])), left - tip)
        return await self._refund_once(record, _cancel_key(booking.id), service, tip)

    async def reconcile_refunds(self) -> int:
        """Refund the cancelled, paid bookings whose refund by policy was never claimed: the process that
        cancelled stopped before it asked (periodic, any process). The claim per booking keeps it to one
        refund however many processes reconcile at once, and Stripe's idempotency key to one at Stripe.
        Returns how many refunds were made."""
        now = self.clock()
        bookings = await self.bookings.cancelled_while_paid(now - RECONCILE_WINDOW, now - RECONCILE_GRACE)
        claimed = await self.claims.taken([_cancel_key(booking.id) for booking in bookings])
        made = 0
        for booking in bookings:
            if _cancel_key(booking.id) not in claimed and await self.refund_by_policy(booking) is not None:
                made += 1
        return made

    async def refund(self, user: User, payment_intent_id: str, amount: int | None) -> RefundDone:
        """payment:refund (admin): any amount up to what is left (service first, then the tip)."""
        record = await self.payments.by_intent(payment_intent_id)
        if record is None or record.status not in SETTLED:
            raise NotFound("No such settled payment")
        left = record.total - record.refunded
        amount = left if amount is None else amount
        if left <= 0 or amount > left:
            raise PreconditionFailed(f"At most {left} can be refunded")
        service_left = record.amount - (record.refunded - record.refunded_tip)
        tip = max(0, amount - service_left)
        refund = await self._refund_once(record, f"{record.id}|admin|{record.refunded}", amount - tip, tip)
        if refund is None:
            raise Conflict("Another refund of this payment is under way; reload it")
        return RefundDone(refund["id"], payment_intent_id, record.id, int(refund["amount"]), record.currency,
                          refund.get("status") or "succeeded")

    async def _refund_once(self, record: BookingPayment, key: str, service: int, tip: int) -> Obj | None:
        """Claim the refund `key`, then make it at Stripe and record it; None when it was claimed before."""
        if service + tip <= 0 or not await self.claims.claim(key, record.id, service, tip, self.clock()):
            return None
        return await self._make_refund(record, key, service, tip)

    async def _make_refund(self, record: BookingPayment, key: str, service: int, tip: int) -> Obj:
        assert record.intent_id is not None
        existing = [r for r in await self.gateway.refunds(record.intent_id)
                    if (r.get("metadata") or {}).get("careline_key") == key]
        refund = existing[0] if existing else await self.gateway.create_refund(
            record.intent_id, service + tip, {"careline_key": key, "careline_tip": str(tip), "booking_id": record.id},
            f"careline-refund-{key}")
        await self.claims.done(key, refund["id"])
        await self.record_refund(record, refund)
        return refund

    async def record_refund(self, record: BookingPayment, refund: Obj) -> None:
        """Write a refund into the ledger and the payment, once each (its tip part from its metadata)."""
        amount = int(refund["amount"])
        tip = min(amount, int((refund.get("metadata") or {}).get("careline_tip") or 0))
        service = amount - tip
        back = pro_rata(service, record.amount, record.commission)
        await self.ledger.record(LedgerEntry(
            id=f"refund:{refund['id']}", kind="refund", booking_id=record.id, intent_id=str(record.intent_id),
            currency=record.currency, amount=service, tip=tip, commission=back, therapist_share=amount - back,
            at=self.clock(), refund_id=refund["id"]))
        updated, counted = await self.payments.add_refund(record.id, refund["id"], amount, tip, self.clock())
        if counted:
            await self._tell(updated)

    async def refunds_changed(self, intent_id: str) -> None:
        """A charge was refunded (maybe outside careline): record every refund of the payment not yet recorded."""
        record = await self.payments.by_intent(intent_id)
        if record is None:
            return
        for refund in await self.gateway.refunds(intent_id):
            if refund.get("status") in (None, "succeeded", "pending"):
                await self.record_refund(record, refund)

    async def retry_refunds(self) -> None:
        """Finish refunds claimed by a process that died before Stripe confirmed them (periodic)."""
        now = self.clock()
        for key, booking_id, service, tip, taken_at in await self.claims.unfinished(now - RETRY_CLAIMS_AFTER):
            record = await self.payments.get(booking_id)
            if record is not None and await self.claims.take_over(key, taken_at, now):
                await self._make_refund(record, key, service, tip)

    # -- disputes ----------------------------------------------------------------------------------

    async def disputed(self, dispute: Obj, created: int) -> None:
        """Flag the payment with the dispute's status (a later event wins) and tell the admins."""
        intent_id = _id(dispute.get("payment_intent"))
        record = await self.payments.by_intent(intent_id) if intent_id else None
        status = str(dispute.get("status") or "needs_response")
        if record is None or created < record.dispute_at or (created, status) == (record.dispute_at, record.dispute):
            return  # an older event, or this one applied before
        moved = await self.payments.move(record, (record.status,), {"dispute": status, "dispute_at": created,
                                                                    "updated_at": self.clock()})
        if moved is None or record.dispute == status:
            return
        await self._tell(moved, booking_moves=False)  # the status and refunds stay: the booking stays as it is
        admins = tuple(await self.users.ids_with_role("admin"))
        await self.bus.publish(PaymentDisputed(record.id, str(dispute.get("id")), status, admins))
