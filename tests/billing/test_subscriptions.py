"""Customers, plans, cards and subscriptions against a running localstripe, with its signed webhooks."""
from __future__ import annotations

import aiohttp

from rest.app_keys import MONGO_DB
from tests.billing.helpers import (
    DECLINING_CARD,
    NS,
    StripePeer,
    add_card,
    billing_server,
    eventually,
)
from tests.clients import JsDriver
from tests.conftest import RunningServer, StartServer


async def test_without_stripe_keys_billing_is_unavailable_and_nothing_else_changes(server: RunningServer) -> None:
    client = await server.client("c1", "client", NS)
    for event, payload in (("plan:list", {}), ("booking:pay", {"bookingId": "b", "paymentMethodId": "pm",
                                                                "requestId": "r"}), ("subscription:get", {})):
        error = await client.error(event, payload, "unavailable")
        assert error["message"] == "Billing is not available on this server"
    async with aiohttp.ClientSession() as session, session.post(server.url + "/webhooks/stripe", data=b"{}",
                                                                headers={"Stripe-Signature": "t=1,v1=x"}) as answer:
        assert answer.status == 503
    booking = await server.client("t1", "therapist", "/booking")
    await booking.error("availability:settings", {}, "not_found")   # booking works as before
    assert not [name for name in await server.app[MONGO_DB].list_collection_names() if name.startswith("billing")]


async def test_plans_cards_and_the_whole_subscription_lifecycle(start_server: StartServer, peer: StripePeer) -> None:
    product, (basic, pro) = await peer.plans(1000, 3000)
    server = await billing_server(start_server, peer, stripe_product=product)
    client = await server.client("c1", "client", NS)
    plans = (await client.ok("plan:list", {}))["items"]
    assert [(plan["id"], plan["amount"], plan["currency"], plan["interval"]) for plan in plans] == [
        (basic, 1000, "usd", "month"), (pro, 3000, "usd", "month")]
    assert (await client.ok("payment-method:list", {}))["items"] == []
    card = await add_card(client, peer)
    await client.ok("payment-method:set-default", {"paymentMethodId": card})
    listed = (await client.ok("payment-method:list", {}))["items"]
    assert listed == [{"id": card, "brand": "visa", "last4": "4242", "expMonth": 12, "expYear": 2034,
                       "isDefault": True}]
    assert await client.call("subscription:get", {}) == {"ok": True, "data": None}   # none yet: null (CONTRACT §7)

    created = await client.ok("subscription:create", {"planId": basic, "requestId": "s1"})
    assert created["planId"] == basic and created["status"] == "active" and created["amount"] == 1000
    assert (await client.expect("subscription:updated"))["id"] == created["id"]
    assert (await client.ok("subscription:create", {"planId": basic, "requestId": "s1"}))["id"] == created["id"]
    await client.error("subscription:create", {"planId": pro, "requestId": "s1"}, "conflict")
    await client.error("subscription:create", {"planId": pro, "requestId": "s2"}, "precondition_failed")
    invoices = (await client.ok("invoice:list", {}))["items"]
    assert [(i["status"], i["amountPaid"]) for i in invoices] == [("paid", 1000)]

    changed = await client.ok("subscription:change", {"planId": pro})
    assert changed["planId"] == pro and changed["amount"] == 3000
    await client.error("subscription:reactivate", {}, "precondition_failed")
    cancelling = await client.ok("subscription:cancel", {"atPeriodEnd": True, "reason": "too expensive"})
    assert cancelling["cancelAtPeriodEnd"] is True and cancelling["cancelReason"] == "too expensive"
    assert cancelling["status"] == "active"
    back = await client.ok("subscription:reactivate", {})
    assert back["cancelAtPeriodEnd"] is False and back["status"] == "active"
    assert (await client.ok("subscription:get", {}))["planId"] == pro
    stored = await server.app[MONGO_DB]["billing_subscriptions"].find_one({"_id": created["id"]})
    assert stored["planId"] == pro and stored["cancelAtPeriodEnd"] is False and stored["userId"] == "c1"
    inbox = server.app[MONGO_DB]["billing_webhook_events"]
    await eventually(lambda: inbox.count_documents({"type": "customer.subscription.created", "applied": True}))

    stranger = await server.client("c2", "client", NS)
    assert await stranger.ok("subscription:get", {}) is None
    assert (await stranger.ok("invoice:list", {}))["items"] == []
    await stranger.error("payment-method:set-default", {"paymentMethodId": card}, "not_found")
    await stranger.error("payment-method:remove", {"paymentMethodId": card}, "not_found")
    await stranger.error("invoice:pay", {"invoiceId": invoices[0]["id"]}, "not_found")
    await stranger.error("subscription:cancel", {"atPeriodEnd": True}, "precondition_failed")
    assert (await client.ok("payment-method:list", {}))["items"][0]["id"] == card   # still the owner's

    ended = await client.ok("subscription:cancel", {"atPeriodEnd": False})
    assert ended["status"] == "canceled"
    await client.ok("payment-method:remove", {"paymentMethodId": card})
    assert (await client.ok("payment-method:list", {}))["items"] == []


async def test_a_declined_invoice_is_paid_with_another_card(start_server: StartServer, peer: StripePeer) -> None:
    product, (basic,) = await peer.plans(1500)
    server = await billing_server(start_server, peer, stripe_product=product)
    client = await server.client("c1", "client", NS)
    notifications = await server.client("c1", "client", "/notifications")
    bad = await add_card(client, peer, DECLINING_CARD)
    created = await client.ok("subscription:create", {"planId": basic, "paymentMethodId": bad, "requestId": "s1"})
    assert created["status"] == "incomplete"
    invoice = (await client.ok("invoice:list", {}))["items"][0]
    assert invoice["status"] == "open" and invoice["amountPaid"] == 0 and invoice["amountDue"] == 1500
    note = await notifications.expect("notification:created")
    assert note["category"] == "billing" and note["title"] == "Payment failed" and "1500" not in note["body"]

    good = await add_card(client, peer)
    paid = await client.ok("invoice:pay", {"invoiceId": invoice["id"], "paymentMethodId": good})
    assert paid["status"] == "paid" and paid["amountPaid"] == 1500
    assert (await client.expect("invoice:updated", lambda data: data["status"] == "paid"))["id"] == invoice["id"]
    await client.error("invoice:pay", {"invoiceId": invoice["id"]}, "precondition_failed")
    subscription = await eventually(lambda: _active(client))
    assert subscription["id"] == created["id"]


async def _active(client) -> dict | None:  # type: ignore[no-untyped-def]
    found = await client.ok("subscription:get", {})
    if found.get("status") != "active":
        await client.sio.sleep(0.2)
        return None
    return found  # type: ignore[no-any-return]


async def test_the_official_client_subscribes_and_hears_the_update(start_server: StartServer, peer: StripePeer,
                                                                   js: JsDriver) -> None:
    product, (basic,) = await peer.plans(900)
    server = await billing_server(start_server, peer, stripe_product=product)
    reply = await js.connect("c", server.url, NS, auth={"token": server.token("c1")})
    assert reply["ok"] is True
    plans = await js.emit("c", "plan:list", {})
    assert plans == {"ok": True, "data": {"items": [{"id": basic, "name": "900", "amount": 900, "currency": "usd",
                                                     "interval": "month", "metered": False}]}}
    secret = (await js.emit("c", "payment-method:setup", {}))["data"]["clientSecret"]
    card = await peer.confirm_setup(secret)
    created = await js.emit("c", "subscription:create", {"planId": basic, "paymentMethodId": card, "requestId": "r"})
    assert created["ok"] is True and created["data"]["status"] == "active"
    assert (await js.expect("c:subscription:updated"))["id"] == created["data"]["id"]
