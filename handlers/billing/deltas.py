"""What billing answers and pushes besides stored records (CONTRACT §7)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """A plan of the configured product (amount in minor units)."""

    id: str
    name: str
    amount: int
    currency: str
    interval: str
    metered: bool


@dataclass(frozen=True)
class Card:
    """A saved card (only what a picker shows)."""

    id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool


@dataclass(frozen=True)
class SetupSecret:
    """`payment-method:setup`: what Stripe Elements confirms in the browser."""

    client_secret: str


@dataclass(frozen=True)
class PayAnswer:
    """`booking:pay`: the PaymentIntent and its Stripe status; `client_secret` only for 3-D Secure."""

    payment_intent_id: str | None
    status: str
    payment_status: str
    client_secret: str | None = None


@dataclass(frozen=True)
class RefundDone:
    """`payment:refund`: one refund of a session payment."""

    id: str
    payment_intent_id: str
    booking_id: str
    amount: int
    currency: str
    status: str
