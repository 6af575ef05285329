"""Session payments against localstripe: booking:pay once, the ledger, refunds by the booking's policy."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from rest.app_keys import MONGO_DB
from tests.billing.helpers import NS, StripePeer, add_card, billing_server, eventually
from tests.booking.helpers import at, book, fix_clock, therapist
from tests.conftest import RunningServer, StartServer

NOW = at("2026-03-01T00:00")
START = at("2026-03-03T10:00")
PRICE = {"amount": 10000, "currency": "usd"}
TIP = 500


async def priced_booking(server: RunningServer) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Therapist t1 charging 100.00 USD; client c1's pending booking. (therapist, client on /booking, on /billing,
    booking)."""
    fix_clock(server, now=NOW)
    t = await therapist(server, policy={"price": PRICE, "requirePayment": True})
    client = await server.client("c1", "client", "/booking")
    booking = await book(client, "t1", START)
    assert booking["policy"]["price"] == PRICE and booking["policy"]["requirePayment"] is True
    billing = await server.client("c1", "client", NS)
    return t, client, billing, booking


async def paid_booking(server: RunningServer, peer: StripePeer) -> tuple[Any, Any, Any, dict[str, Any], str]:
    """priced_booking, paid by card with a tip; also returns the PaymentIntent id."""
    t, client, billing, booking = await priced_booking(server)
    card = await add_card(billing, peer)
    answer = await billing.ok("booking:pay", {"bookingId": booking["id"], "paymentMethodId": card,
                                              "requestId": "p1", "tipAmount": TIP})
    assert answer["status"] == "succeeded" and answer["paymentStatus"] == "paid" and answer["clientSecret"] is None
    return t, client, billing, booking, answer["paymentIntentId"]


async def test_booking_pay_is_paid_once_by_the_answer_and_the_webhook(start_server: StartServer,
                                                                      peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    t, client, billing, booking, intent_id = await paid_booking(server, peer)
    db = server.app[MONGO_DB]
    await eventually(lambda: db["billing_webhook_events"].count_documents(
        {"type": "payment_intent.succeeded", "applied": True}))
    entries = await db["billing_ledger"].find({}).to_list()
    assert [(e["kind"], e["amount"], e["tip"], e["commission"], e["therapistShare"], e["intentId"])
            for e in entries] == [("payment", 10000, TIP, 1000, 9500, intent_id)]
    intent = await peer.v1.payment_intents.retrieve_async(intent_id)
    assert intent.amount == 10500 and intent.status == "succeeded" and intent.metadata["booking_id"] == booking["id"]
    for party in (client, t):
        updated = await party.expect("booking:updated", lambda b: b["paymentStatus"] == "paid")
        assert updated["id"] == booking["id"]
    assert (await client.ok("booking:get", {"bookingId": booking["id"]}))["paymentStatus"] == "paid"
    paid = await billing.expect("payment:updated", lambda p: p["status"] == "paid")
    assert paid == {"bookingId": booking["id"], "paymentIntentId": intent_id, "status": "paid", "amount": 10000,
                    "tipAmount": TIP, "currency": "usd", "refunded": 0, "receiptUrl": None, "dispute": None}
    await billing.absent("payment:updated", within=1.0, predicate=lambda p: p["status"] == "paid")

    card = (await billing.ok("payment-method:list", {}))["items"][0]["id"]
    again = await billing.ok("booking:pay", {"bookingId": booking["id"], "paymentMethodId": card,
                                             "requestId": "p1", "tipAmount": TIP})
    assert again["paymentIntentId"] == intent_id and again["paymentStatus"] == "paid"
    await billing.error("booking:pay", {"bookingId": booking["id"], "paymentMethodId": card, "requestId": "p1"},
                        "conflict")   # same requestId, another tip
    await billing.error("booking:pay", {"bookingId": booking["id"], "paymentMethodId": card, "requestId": "p2"},
                        "precondition_failed")


async def test_nobody_pays_or_refunds_another_users_booking(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, _client, billing, booking = await priced_booking(server)
    own_card = await add_card(billing, peer)
    stranger = await server.client("c2", "client", NS)
    stranger_card = await add_card(stranger, peer)
    pay = {"bookingId": booking["id"], "paymentMethodId": stranger_card, "requestId": "x"}
    await stranger.error("booking:pay", pay, "not_found")
    await billing.error("booking:pay", {**pay, "paymentMethodId": stranger_card}, "not_found")  # not c1's card
    await stranger.error("payment-method:remove", {"paymentMethodId": own_card}, "not_found")
    therapist_billing = await server.client("t1", "therapist", NS)
    await therapist_billing.error("booking:pay", {**pay, "paymentMethodId": own_card}, "forbidden")
    await billing.error("booking:pay", {**pay, "tipAmount": -1}, "invalid_payload")
    await billing.error("booking:pay", {**pay, "bookingId": "nope"}, "not_found")
    await billing.error("payment:refund", {"paymentIntentId": "pi_x"}, "forbidden")
    db = server.app[MONGO_DB]
    assert await db["billing_booking_payments"].count_documents({}) == 0
    assert await db["billing_ledger"].count_documents({}) == 0


async def test_a_declined_card_fails_the_payment_and_another_card_pays(start_server: StartServer,
                                                                       peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, client, billing, booking = await priced_booking(server)
    bad = await add_card(billing, peer, "4000000000000341")
    failed = await billing.ok("booking:pay", {"bookingId": booking["id"], "paymentMethodId": bad, "requestId": "p1"})
    assert failed["status"] == "requires_payment_method" and failed["paymentStatus"] == "failed"
    await client.expect("booking:updated", lambda b: b["paymentStatus"] == "failed")
    good = await add_card(billing, peer)
    paid = await billing.ok("booking:pay", {"bookingId": booking["id"], "paymentMethodId": good, "requestId": "p2"})
    assert paid["paymentStatus"] == "paid" and paid["paymentIntentId"] != failed["paymentIntentId"]
    ledger = await server.app[MONGO_DB]["billing_ledger"].find({}).to_list()
    assert [(e["kind"], e["intentId"], e["tip"]) for e in ledger] == [("payment", paid["paymentIntentId"], 0)]


@pytest.mark.parametrize(("who", "hours_before", "percent"), [
    ("c1", 30, 100), ("c1", 5, 75), ("c1", 1, 50), ("t1", 1, 100)])
async def test_cancelling_refunds_by_the_snapshotted_policy_once(start_server: StartServer, peer: StripePeer,
                                                                 who: str, hours_before: int, percent: int) -> None:
    server = await billing_server(start_server, peer)
    t, client, _billing, booking, intent_id = await paid_booking(server, peer)
    fix_clock(server, now=START - timedelta(hours=hours_before))
    canceller = client if who == "c1" else t
    cancelled = await canceller.ok("booking:cancel", {"bookingId": booking["id"]})
    assert cancelled["refund"] == {"percent": percent, "amount": None}
    service = 10000 * percent // 100
    refunded = await client.expect("booking:updated", lambda b: (b["refund"] or {}).get("amount") is not None)
    assert refunded["refund"] == {"percent": percent, "amount": service + TIP}
    assert refunded["paymentStatus"] == ("refunded" if percent == 100 else "partially_refunded")

    handler = server.billing.parts.payments
    record = await handler.bookings.get(booking["id"])
    await asyncio.gather(*(handler.refund_by_policy(record) for _ in range(5)))   # a retried, racing cancel
    await canceller.error("booking:cancel", {"bookingId": booking["id"]}, "precondition_failed")

    refunds = (await peer.v1.refunds.list_async({"payment_intent": intent_id})).data
    assert [r.amount for r in refunds] == [service + TIP]
    entries = await server.app[MONGO_DB]["billing_ledger"].find({"kind": "refund"}).to_list()
    assert [(e["amount"], e["tip"], e["commission"], e["therapistShare"]) for e in entries] == [
        (service, TIP, 1000 * percent // 100, service + TIP - 1000 * percent // 100)]
    stored = await server.app[MONGO_DB]["bookings"].find_one({"_id": booking["id"]})
    assert stored["refund"] == {"percent": percent, "amount": service + TIP}


async def test_an_admin_refunds_any_amount_up_to_what_is_left(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, _client, billing, booking, intent_id = await paid_booking(server, peer)
    admin = await server.client("a1", "admin", NS)
    first = await admin.ok("payment:refund", {"paymentIntentId": intent_id, "amount": 2500})
    assert first["amount"] == 2500 and first["bookingId"] == booking["id"]
    await admin.error("payment:refund", {"paymentIntentId": intent_id, "amount": 8001}, "precondition_failed")
    rest = await admin.ok("payment:refund", {"paymentIntentId": intent_id})
    assert rest["amount"] == 8000
    await admin.error("payment:refund", {"paymentIntentId": intent_id}, "precondition_failed")
    await billing.expect("payment:updated", lambda p: p["status"] == "refunded" and p["refunded"] == 10500)
    entries = await server.app[MONGO_DB]["billing_ledger"].find({"kind": "refund"}).sort("at", 1).to_list()
    assert sorted((e["amount"], e["tip"], e["commission"]) for e in entries) == [(2500, 0, 250), (7500, 500, 750)]


async def test_a_refund_claimed_by_a_process_that_died_is_finished_once(start_server: StartServer,
                                                                        peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, redis=True)
    other = await billing_server(start_server, peer, hook="careline-2", redis=True, deliveries=False)
    _t, _client, billing, booking, intent_id = await paid_booking(server, peer)
    fix_clock(other, now=NOW)
    claims = server.billing.parts.payments.claims
    assert await claims.claim(f"{booking['id']}|cancelled", booking["id"], 7500, TIP, NOW - timedelta(minutes=5))
    sweeps = [each.billing.parts.payments.retry_refunds() for each in (server, other) for _ in range(3)]
    await asyncio.gather(*sweeps)
    refunds = (await peer.v1.refunds.list_async({"payment_intent": intent_id})).data
    assert [(r.amount, r.metadata["careline_key"]) for r in refunds] == [(7500 + TIP, f"{booking['id']}|cancelled")]
    await billing.expect("payment:updated", lambda p: p["refunded"] == 7500 + TIP)
    assert await server.app[MONGO_DB]["billing_ledger"].count_documents({"kind": "refund"}) == 1
    await server.billing.parts.payments.retry_refunds()   # finished: nothing left to do
    assert len((await peer.v1.refunds.list_async({"payment_intent": intent_id})).data) == 1


async def test_a_double_submitted_payment_charges_once(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, _client, billing, booking = await priced_booking(server)
    card = await add_card(billing, peer)
    pay = {"bookingId": booking["id"], "paymentMethodId": card, "requestId": "p1", "tipAmount": TIP}
    other = {**pay, "requestId": "p2"}
    payloads = (pay, pay, other, pay)
    answers = await asyncio.gather(*(billing.call("booking:pay", each) for each in payloads))
    charged = {answer["data"]["paymentIntentId"] for answer in answers if answer["ok"]}
    assert len(charged) == 1 and None not in charged
    assert {answer["error"]["code"] for answer in answers if not answer["ok"]} <= {"conflict", "precondition_failed"}
    intent_id = charged.pop()
    winner = next(each for each, answer in zip(payloads, answers, strict=True) if answer["ok"])
    assert (await billing.ok("booking:pay", winner))["paymentIntentId"] == intent_id
    ledger = await server.app[MONGO_DB]["billing_ledger"].find({}).to_list()
    assert [(e["kind"], e["intentId"]) for e in ledger] == [("payment", intent_id)]


async def test_a_refund_missed_because_the_cancelling_process_stopped_is_made_once_later(
        start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, redis=True)
    other = await billing_server(start_server, peer, hook="careline-2", redis=True, deliveries=False)
    _t, client, billing, booking, intent_id = await paid_booking(server, peer)
    cancel_at = START - timedelta(hours=5)
    clock = fix_clock(server, other, now=cancel_at)
    payments = server.billing.parts.payments

    async def stopped_before_refunding(_booking: Any) -> None:  # the process died between cancel and refund
        return None

    payments.refund_by_policy = stopped_before_refunding  # type: ignore[method-assign,assignment]
    cancelled = await client.ok("booking:cancel", {"bookingId": booking["id"]})
    assert cancelled["refund"] == {"percent": 75, "amount": None}
    del payments.refund_by_policy  # the next process runs the real code
    reconcilers = [each.billing.parts.payments for each in (server, other)]
    assert await reconcilers[0].reconcile_refunds() == 0  # within the grace: the cancel's own refund may still come
    assert (await peer.v1.refunds.list_async({"payment_intent": intent_id})).data == []
    clock[0] = cancel_at + timedelta(minutes=3)
    made = await asyncio.gather(*(each.reconcile_refunds() for each in reconcilers for _ in range(3)))
    assert sum(made) == 1
    refunds = (await peer.v1.refunds.list_async({"payment_intent": intent_id})).data
    assert [(r.amount, r.metadata["careline_key"]) for r in refunds] == [(7500 + TIP, f"{booking['id']}|cancelled")]
    refunded = await client.expect("booking:updated", lambda b: (b["refund"] or {}).get("amount") is not None)
    assert refunded["refund"] == {"percent": 75, "amount": 7500 + TIP}
    await billing.expect("payment:updated", lambda p: p["refunded"] == 7500 + TIP)
    entries = await server.app[MONGO_DB]["billing_ledger"].find({"kind": "refund"}).to_list()
    assert [(e["amount"], e["tip"], e["commission"]) for e in entries] == [(7500, TIP, 750)]
    assert await reconcilers[1].reconcile_refunds() == 0  # claimed and made: never again
    assert len((await peer.v1.refunds.list_async({"payment_intent": intent_id})).data) == 1


async def test_the_reconciler_leaves_bookings_with_nothing_due_or_refunded_already(
        start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, client, _billing, booking, intent_id = await paid_booking(server, peer)
    clock = fix_clock(server, now=START - timedelta(hours=5))
    assert (await client.ok("booking:cancel", {"bookingId": booking["id"]}))["refund"]["percent"] == 75
    partly = await client.expect("booking:updated", lambda b: (b["refund"] or {}).get("amount") is not None)
    assert partly["paymentStatus"] == "partially_refunded"  # still a candidate: its claim is what rules it out
    clock[0] += timedelta(minutes=3)
    assert await server.billing.parts.payments.reconcile_refunds() == 0
    assert len((await peer.v1.refunds.list_async({"payment_intent": intent_id})).data) == 1
