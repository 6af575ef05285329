"""POST /webhooks/stripe: signatures, the inbox, exactly-once application across processes, any order."""
from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import aiohttp

from errors import Unavailable
from rest.app_keys import MONGO_DB
from tests.billing.helpers import (
    THREE_D_SECURE_CARD,
    StripePeer,
    billing_server,
    event_of,
    eventually,
    post_event,
    signed,
)
from tests.billing.test_payments import priced_booking
from tests.conftest import RunningServer, StartServer


async def pending_3ds_payment(server: RunningServer, peer: StripePeer) -> tuple[Any, dict[str, Any], str]:
    """A booking whose payment waits for 3-D Secure; then authenticated at Stripe (no event reaches careline).

    Returns (the client's /billing socket, the booking, the PaymentIntent id)."""
    _t, _client, billing, booking = await priced_booking(server)
    await billing.ok("payment-method:setup", {})
    customer = (await server.app[MONGO_DB]["billing_customers"].find_one({"_id": "c1"}))["customerId"]
    card = await peer.card(THREE_D_SECURE_CARD)
    await peer.v1.payment_methods.attach_async(card, {"customer": customer})
    answer = await billing.ok("booking:pay", {"bookingId": booking["id"], "paymentMethodId": card,
                                              "requestId": "p1"})
    assert answer["status"] == "requires_action" and answer["paymentStatus"] == "pending"
    assert answer["clientSecret"].startswith(answer["paymentIntentId"])
    async with aiohttp.ClientSession() as session, session.post(
            f"{peer.url}/v1/payment_intents/{answer['paymentIntentId']}/_authenticate",
            data={"client_secret": answer["clientSecret"], "success": "true"},
            headers={"Authorization": "Bearer sk_test_careline"}) as response:
        assert response.status == 200, await response.text()
    return billing, booking, answer["paymentIntentId"]


def intent_event(kind: str, intent_id: str, booking_id: str, status: str, created: int) -> dict[str, Any]:
    """A payment_intent.* event as Stripe sends it (the object as it was at `created`)."""
    return event_of(kind, {"id": intent_id, "object": "payment_intent", "status": status, "amount": 10000,
                           "metadata": {"booking_id": booking_id}}, created)


async def test_bad_signatures_are_refused_and_nothing_is_stored(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    event = event_of("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    body, header = signed(event, secret="whsec_forged")
    assert (await post_event(server, body, header))[0] == 400
    body, header = signed(event)
    assert (await post_event(server, body.replace(b"pi_1", b"pi_2"), header))[0] == 400   # tampered
    old_body, old_header = signed(event, at=int(time.time()) - 600)
    status, answer = await post_event(server, old_body, old_header)
    assert status == 400 and answer["error"]["code"] == "invalid_payload"
    assert (await post_event(server, body, None))[0] == 400
    assert (await post_event(server, b"not json", signed({"x": 1})[1]))[0] == 400
    assert await server.app[MONGO_DB]["billing_webhook_events"].count_documents({}) == 0
    status, answer = await post_event(server, body, header)
    assert status == 200 and answer == {"received": True, "duplicate": False}
    unknown_body, unknown_header = signed(event_of("customer.tax_id.created", {"id": "txi_1"}))
    assert (await post_event(server, unknown_body, unknown_header))[0] == 200
    inbox = server.app[MONGO_DB]["billing_webhook_events"]
    await eventually(lambda: inbox.count_documents({"applied": True}))
    assert await inbox.count_documents({}) == 2


async def test_one_event_five_times_to_two_processes_takes_effect_once(start_server: StartServer,
                                                                       peer: StripePeer) -> None:
    first = await billing_server(start_server, peer, redis=True, deliveries=False)
    second = await billing_server(start_server, peer, hook="careline-2", redis=True, deliveries=False)
    billing, booking, intent_id = await pending_3ds_payment(first, peer)
    body, header = signed(intent_event("payment_intent.succeeded", intent_id, booking["id"], "succeeded",
                                       int(time.time())))
    answers = await asyncio.gather(*(post_event(server, body, header) for server in (first, second) * 5))
    assert {status for status, _answer in answers} == {200}
    assert sum(not answer["duplicate"] for _status, answer in answers) == 1
    db = first.app[MONGO_DB]
    await eventually(lambda: db["billing_webhook_events"].count_documents({"applied": True}))
    await billing.expect("payment:updated", lambda p: p["status"] == "paid")
    await billing.absent("payment:updated", within=1.0, predicate=lambda p: p["status"] == "paid")
    assert await db["billing_ledger"].count_documents({"kind": "payment"}) == 1
    assert (await db["billing_booking_payments"].find_one({"_id": booking["id"]}))["status"] == "paid"
    assert (await db["bookings"].find_one({"_id": booking["id"]}))["paymentStatus"] == "paid"


async def test_succeeded_before_created_and_processing_ends_paid(start_server: StartServer,
                                                                 peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    _billing, booking, intent_id = await pending_3ds_payment(server, peer)
    now = int(time.time())
    for kind, status, created in (("payment_intent.succeeded", "succeeded", now),
                                  ("payment_intent.created", "requires_action", now - 2),
                                  ("payment_intent.processing", "processing", now - 1)):
        assert (await post_event(server, *signed(intent_event(kind, intent_id, booking["id"], status, created))))[0] \
            == 200
    db = server.app[MONGO_DB]
    await eventually(lambda: _all_applied(db, 3))
    assert (await db["billing_booking_payments"].find_one({"_id": booking["id"]}))["status"] == "paid"
    assert (await db["bookings"].find_one({"_id": booking["id"]}))["paymentStatus"] == "paid"
    assert await db["billing_ledger"].count_documents({}) == 1


async def _all_applied(db: Any, count: int) -> bool:
    return await db["billing_webhook_events"].count_documents({"applied": True}) == count  # type: ignore[no-any-return]


async def test_a_dispute_flags_the_payment_and_tells_the_admins(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    admin = await server.client("a1", "admin", "/notifications")
    billing, booking, intent_id = await pending_3ds_payment(server, peer)
    await server.billing.parts.payments.settle(await server.billing.parts.webhooks.gateway.payment_intent(intent_id))
    now = int(time.time())
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": intent_id, "charge": "ch_1", "amount": 10000}
    closed = event_of("charge.dispute.closed", {**dispute, "status": "lost"}, now)
    opened = event_of("charge.dispute.created", {**dispute, "status": "needs_response"}, now - 5)
    db = server.app[MONGO_DB]
    for applied, event in zip((1, 2, 2), (closed, opened, closed), strict=True):   # out of order, then again
        assert (await post_event(server, *signed(event)))[0] == 200
        await eventually(functools.partial(_all_applied, db, applied))
    assert (await db["billing_booking_payments"].find_one({"_id": booking["id"]}))["dispute"] == "lost"
    assert (await admin.expect("notification:created"))["body"] == "Dispute status: lost"
    await admin.absent("notification:created", within=0.5)
    await billing.expect("payment:updated", lambda p: p["dispute"] == "lost")


async def test_an_event_that_fails_to_apply_is_retried_with_backoff(start_server: StartServer,
                                                                   peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    billing, booking, intent_id = await pending_3ds_payment(server, peer)
    gateway = server.billing.parts.webhooks.gateway
    real, calls = gateway.payment_intent, []

    async def down_once(intent: str) -> dict[str, Any]:   # Stripe unreachable for the first attempt
        calls.append(intent)
        if len(calls) == 1:
            raise Unavailable("The payment provider is unavailable", {"dependency": "stripe"})
        return await real(intent)

    gateway.payment_intent = down_once  # type: ignore[method-assign]
    body, header = signed(intent_event("payment_intent.succeeded", intent_id, booking["id"], "succeeded",
                                       int(time.time())))
    assert (await post_event(server, body, header))[0] == 200
    db = server.app[MONGO_DB]
    failed = await eventually(lambda: db["billing_webhook_events"].find_one({"attempts": 1}))
    assert failed["applied"] is False and failed["nextAt"] > failed["receivedAt"]
    await eventually(lambda: _all_applied(db, 1))
    assert len(calls) == 2
    await billing.expect("payment:updated", lambda p: p["status"] == "paid")
    assert await db["billing_ledger"].count_documents({}) == 1
