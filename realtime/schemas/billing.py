"""Request payloads and wire shapes of /billing (CONTRACT §7)."""
from __future__ import annotations

import re

from realtime.schemas.common import (
    Id,
    OutputSchema,
    Pagination,
    RequestId,
    RequestSchema,
    UtcDateTime,
    fields,
    page_of,
    validate,
)

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class PaymentMethodRef(RequestSchema):
    """`{paymentMethodId}`."""

    payment_method_id = Id(required=True)


class CreateSubscription(RequestSchema):
    """`subscription:create {planId, paymentMethodId?, requestId}`."""

    plan_id = Id(required=True)
    payment_method_id = Id(load_default=None)
    request_id = RequestId(required=True)


class ChangeSubscription(RequestSchema):
    """`subscription:change {planId}`."""

    plan_id = Id(required=True)


class CancelSubscription(RequestSchema):
    """`subscription:cancel {atPeriodEnd, reason?}`."""

    at_period_end = fields.Boolean(required=True)
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class ListInvoices(Pagination):
    """`invoice:list` pagination."""


class PayInvoice(RequestSchema):
    """`invoice:pay {invoiceId, paymentMethodId?}`."""

    invoice_id = Id(required=True)
    payment_method_id = Id(load_default=None)


class PayBooking(RequestSchema):
    """`booking:pay {bookingId, paymentMethodId, requestId, tipAmount?}` (tip in minor units)."""

    booking_id = Id(required=True)
    payment_method_id = Id(required=True)
    request_id = RequestId(required=True)
    tip_amount = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))


class RefundPayment(RequestSchema):
    """`payment:refund {paymentIntentId, amount?}` (admin)."""

    payment_intent_id = Id(required=True)
    amount = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, 100_000_000))


class UsageQuery(RequestSchema):
    """`billing:usage {period?}`: a month `YYYY-MM` (this month by default)."""

    period = fields.String(load_default=None, validate=validate.Regexp(PERIOD, error="A month, YYYY-MM."))


# -- what the server sends ---------------------------------------------------------------------------

class PlanOut(OutputSchema):
    """`{id, name, amount, currency, interval, metered}`."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    interval = fields.String(required=True)
    metered = fields.Boolean(required=True)


class PlanListOut(OutputSchema):
    """`{items: [Plan]}`."""

    items = fields.List(fields.Nested(PlanOut), required=True)


class SetupOut(OutputSchema):
    """`{clientSecret}` of a SetupIntent for Stripe Elements."""

    client_secret = fields.String(required=True)


class CardOut(OutputSchema):
    """A saved card: `{id, brand, last4, expMonth, expYear, isDefault}`."""

    id = fields.String(required=True)
    brand = fields.String(allow_none=True, required=True)
    last4 = fields.String(allow_none=True, required=True)
    exp_month = fields.Integer(allow_none=True, required=True)
    exp_year = fields.Integer(allow_none=True, required=True)
    is_default = fields.Boolean(required=True)


class CardListOut(OutputSchema):
    """`{items: [Card]}`."""

    items = fields.List(fields.Nested(CardOut), required=True)


class SubscriptionOut(OutputSchema):
    """`Subscription`: the caller's plan and where it stands (Stripe's status)."""

    id = fields.String(required=True)
    plan_id = fields.String(required=True)
    status = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    interval = fields.String(required=True)
    cancel_at_period_end = fields.Boolean(required=True)
    cancel_reason = fields.String(allow_none=True, required=True)
    current_period_start = UtcDateTime(allow_none=True, required=True)
    current_period_end = UtcDateTime(allow_none=True, required=True)
    canceled_at = UtcDateTime(allow_none=True, required=True)
    latest_invoice_id = fields.String(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)


class InvoiceOut(OutputSchema):
    """`Invoice`: amounts in minor units; `hostedInvoiceUrl`/`receiptUrl` where Stripe has them."""

    id = fields.String(required=True)
    subscription_id = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    amount_due = fields.Integer(required=True)
    amount_paid = fields.Integer(required=True)
    currency = fields.String(required=True)
    attempt_count = fields.Integer(required=True)
    hosted_invoice_url = fields.String(allow_none=True, required=True)
    receipt_url = fields.String(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)


InvoicePageOut = page_of(InvoiceOut, "InvoicePageOut")


class PayAnswerOut(OutputSchema):
    """The ack of `booking:pay`: `{paymentIntentId, status (Stripe's), paymentStatus, clientSecret?}`."""

    payment_intent_id = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    payment_status = fields.String(required=True)
    client_secret = fields.String(allow_none=True, required=True)


class PaymentOut(OutputSchema):
    """`payment:updated`: a booking's payment (amounts in minor units; `refunded` so far)."""

    booking_id = fields.String(attribute="id", required=True)
    payment_intent_id = fields.String(attribute="intent_id", allow_none=True, required=True)
    status = fields.String(required=True)
    amount = fields.Integer(required=True)
    tip_amount = fields.Integer(attribute="tip", required=True)
    currency = fields.String(required=True)
    refunded = fields.Integer(required=True)
    receipt_url = fields.String(allow_none=True, required=True)
    dispute = fields.String(allow_none=True, required=True)


class RefundOut(OutputSchema):
    """`Refund`: `{id, paymentIntentId, bookingId, amount, currency, status}`."""

    id = fields.String(required=True)
    payment_intent_id = fields.String(required=True)
    booking_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)


class UsageOut(OutputSchema):
    """`billing:usage`: `{therapistId, period, minutes, sessions}`."""

    therapist_id = fields.String(required=True)
    period = fields.String(required=True)
    minutes = fields.Integer(required=True)
    sessions = fields.Integer(required=True)
