"""Matrix rows of /billing: the owner's cards, subscription and open invoice (the party, a user with a customer
and a card of its own, must not reach them), and the owner's priced booking with the party, unpaid or paid.

The cells of /billing run on a server with Stripe configured against the run's one localstripe (`SERVER`).
"""
from __future__ import annotations

from typing import Any

from clock import iso
from tests.billing.helpers import DECLINING_CARD, GOOD_CARD, LOCALSTRIPE, NS, StripePeer, add_card, stripe_settings
from tests.booking.helpers import availability, later
from tests.hostile.matrix import FB, NF, OK, Maker, Row, World, codes, row

PF = "precondition_failed"
OWN = codes(OK, NF, NF, NF, NF)                # the caller's own customer only: another customer's id is unknown
CLIENT_OF_BOOKING = codes(OK, FB, NF, FB, FB)  # booking:pay is a client's request, for their own booking
ADMINS = codes(FB, FB, FB, FB, OK)
PRICE = {"amount": 10000, "currency": "usd"}


def server_settings() -> dict[str, Any]:
    """Settings of the server for /billing cells: Stripe at the run's localstripe (started on first use)."""
    return stripe_settings(LOCALSTRIPE.url())


SERVER = server_settings  # the matrix's per-table hook


async def _card(world: World, relation: str, number: str = GOOD_CARD) -> str:
    """A card saved by `relation` as Stripe Elements would (it gets a Stripe customer on the way)."""
    peer = StripePeer(LOCALSTRIPE.url())
    try:
        return await add_card(await world.client(relation, NS), peer, number)
    finally:
        await peer.close()


async def make_card(world: World) -> None:
    """The owner's card; the party saves one of its own (so it has a customer to confuse with the owner's)."""
    world.ids["card"] = await _card(world, "owner")
    world.ids["partyCard"] = await _card(world, "party")


async def make_plans(world: World) -> None:
    peer = StripePeer(LOCALSTRIPE.url())
    try:
        _product, (world.ids["plan"], world.ids["otherPlan"]) = await peer.plans(1000, 3000)
    finally:
        await peer.close()


async def make_subscription(world: World) -> None:
    """The owner's active subscription, paid with their card."""
    for kind, make in (("card", make_card), ("plan", make_plans)):
        if kind not in world.ids:
            await make(world)
    owner = await world.client("owner", NS)
    created = await owner.ok("subscription:create", {"planId": world.ids["plan"], "paymentMethodId": world.ids["card"],
                                                     "requestId": "s"})
    assert created["status"] == "active", created
    world.ids["subscription"] = created["id"]


async def make_invoice(world: World) -> None:
    """The owner's open invoice: a subscription charged to a declining card (their good card pays it later)."""
    for kind, make in (("card", make_card), ("plan", make_plans)):
        if kind not in world.ids:
            await make(world)
    bad = await _card(world, "owner", DECLINING_CARD)
    owner = await world.client("owner", NS)
    created = await owner.ok("subscription:create", {"planId": world.ids["plan"], "paymentMethodId": bad,
                                                     "requestId": "s"})
    assert created["status"] == "incomplete", created
    invoice = (await owner.ok("invoice:list", {}))["items"][0]
    assert invoice["status"] == "open", invoice
    world.ids["invoice"] = invoice["id"]


async def make_priced_booking(world: World) -> None:
    """The owner's pending booking with the party, who charges for sessions."""
    party = await world.client("party", "/booking")
    await party.ok("availability:set", availability(policy={"price": PRICE, "requirePayment": True}))
    owner = await world.client("owner", "/booking")
    booking = await owner.ok("booking:create", {"therapistId": world.user("party"), "start": iso(later(72)),
                                                "requestId": "b"})
    world.ids["pricedBooking"] = booking["id"]


async def make_paid_booking(world: World) -> None:
    """The owner's booking with the party, paid by the owner's card: its PaymentIntent."""
    for kind, make in (("card", make_card), ("pricedBooking", make_priced_booking)):
        if kind not in world.ids:
            await make(world)
    owner = await world.client("owner", NS)
    paid = await owner.ok("booking:pay", {"bookingId": world.ids["pricedBooking"],
                                          "paymentMethodId": world.ids["card"], "requestId": "p"})
    assert paid["paymentStatus"] == "paid", paid
    world.ids["payment"] = paid["paymentIntentId"]


MAKERS: dict[str, Maker] = {"card": make_card, "plan": make_plans, "subscription": make_subscription,
                            "invoice": make_invoice, "pricedBooking": make_priced_booking,
                            "payment": make_paid_booking}


def card(w: World) -> dict[str, Any]:
    return {"paymentMethodId": w.ids["card"]}


ROWS: dict[tuple[str, str], Row] = {
    ("/billing", "payment-method:set-default"): row("card", card, OWN),
    ("/billing", "payment-method:remove"): row("card", card, OWN),
    # plans are public; subscribing with another customer's card is not
    ("/billing", "subscription:create"): row("card plan", lambda w: {**card(w), "planId": w.ids["plan"],
                                                                     "requestId": "x"}, OWN),
    # a plan id names nothing of the owner: whoever has no subscription has none to change
    ("/billing", "subscription:change"): row("subscription", lambda w: {"planId": w.ids["otherPlan"]},
                                             codes(OK, PF, PF, PF, PF)),
    ("/billing", "invoice:pay"): row("invoice", lambda w: {**card(w), "invoiceId": w.ids["invoice"]}, OWN),
    ("/billing", "booking:pay"): row("card pricedBooking", lambda w: {**card(w), "bookingId": w.ids["pricedBooking"],
                                                                      "requestId": "x"}, CLIENT_OF_BOOKING),
    # a receipt of a paid session: its client and therapist only
    ("/billing", "booking:receipt"): row("payment", lambda w: {"bookingId": w.ids["pricedBooking"]},
                                         codes(OK, OK, NF, NF, NF)),
    ("/billing", "payment:refund"): row("payment", lambda w: {"paymentIntentId": w.ids["payment"], "amount": 100},
                                        ADMINS),
}
