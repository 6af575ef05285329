"""Web Push through a local push service that verifies VAPID and decrypts what careline sends."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from clock import utcnow
from realtime.schemas.notifications import NotificationOut
from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer, StartServer
from tests.notifications.push_service import Browser, PushService

WIRE = NotificationOut()

NS = "/notifications"


@pytest.fixture
async def app(start_server: StartServer) -> RunningServer:
    """A server that releases held pushes quickly and retries fast."""
    return await start_server(push_release_interval_seconds=0.1, push_retry_base_seconds=0.05)


@pytest.fixture
async def push(app: RunningServer) -> AsyncIterator[PushService]:
    """The local push service, trusting the server's VAPID public key."""
    async with aiohttp.ClientSession() as session, session.get(app.url + "/api/push/vapid-public-key") as response:
        key = (await response.json())["publicKey"]
    service = PushService(key)
    await service.start()
    yield service
    await service.stop()


async def subscribe(app: RunningServer, push: PushService, user_id: str, name: str = "b1",
                    stay: bool = False) -> Any:
    """Subscribe a browser for the user, then (unless `stay`) close the socket so the user is offline."""
    client = await app.client(user_id, namespace=NS)
    result = await client.ok("push:subscribe", push.browser(name).subscription())
    if not stay:
        await client.disconnect()
        await asyncio.sleep(0.05)
    return client if stay else result


async def notify(app: RunningServer, user_id: str = "u1", **extra: Any) -> dict[str, Any]:
    """One booking notification."""
    fields = {"category": "booking", "title": "Session confirmed", "body": "Tue 24 Nov 2026, 10:00 UTC", **extra}
    created = await app.notifications.notifications.notify(user_id, **fields)
    assert created is not None
    return WIRE.dump(created)


async def deliveries(app: RunningServer, notification_id: str) -> list[dict[str, Any]]:
    """Delivery records of one notification, after the background sends settle."""
    for _ in range(100):
        docs = [d async for d in app.app[MONGO_DB]["push_deliveries"].find({"notificationId": notification_id})]
        if docs and all(d["status"] not in ("pending", "retrying") for d in docs):
            return docs
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries of {notification_id} did not settle")


async def test_vapid_public_key_is_an_uncompressed_point(app: RunningServer, push: PushService) -> None:
    assert len(push.vapid_public_key) == 87 and app.notifications.push.public_key == push.vapid_public_key


async def test_offline_user_gets_an_encrypted_neutral_push(app: RunningServer, push: PushService) -> None:
    await subscribe(app, push, "u1")
    created = await notify(app, data={"bookingId": "b1"})
    received = await push.next()
    assert received.payload == {"id": created["id"], "category": "booking", "title": "Session confirmed",
                                "body": "Tue 24 Nov 2026, 10:00 UTC"}
    assert received.claims["aud"] == push.url
    assert received.headers["TTL"] == "86400" and received.headers["Urgency"] == "normal"
    assert 0 < len(received.headers["Topic"]) <= 32
    [record] = await deliveries(app, created["id"])
    assert (record["status"], record["attempts"], record["lastStatus"]) == ("sent", 1, 201)
    assert not push.errors


async def test_gone_subscription_is_removed(app: RunningServer, push: PushService) -> None:
    await subscribe(app, push, "u1")
    push.answers = [410]
    created = await notify(app)
    [record] = await deliveries(app, created["id"])
    assert (record["status"], record["lastStatus"]) == ("gone", 410)
    assert await app.app[MONGO_DB]["push_subscriptions"].count_documents({"userId": "u1"}) == 0
    await notify(app)
    await push.nothing(0.3)
    assert len(push.attempts) == 1


async def test_rate_limited_then_accepted_is_retried(app: RunningServer, push: PushService) -> None:
    await subscribe(app, push, "u1")
    push.answers = [429, 500]
    created = await notify(app)
    assert (await push.next()).payload["id"] == created["id"]
    [record] = await deliveries(app, created["id"])
    assert (record["status"], record["attempts"]) == ("sent", 3)
    assert [h["status"] for h in record["history"]] == [429, 500, 201]


async def test_server_errors_give_up_after_five_tries(app: RunningServer, push: PushService) -> None:
    await subscribe(app, push, "u1")
    push.answers = [500] * 6
    created = await notify(app)
    [record] = await deliveries(app, created["id"])
    assert (record["status"], record["attempts"], record["lastStatus"]) == ("failed", 5, 500)
    assert await app.app[MONGO_DB]["push_subscriptions"].count_documents({"userId": "u1"}) == 1


def quiet_now() -> dict[str, str]:
    """Quiet hours from an hour ago to an hour ahead, in a zone that is not UTC."""
    zone = "Asia/Tokyo"
    from zoneinfo import ZoneInfo

    local = datetime.now(timezone.utc).astimezone(ZoneInfo(zone))
    return {"start": (local - timedelta(hours=1)).strftime("%H:%M"),
            "end": (local + timedelta(hours=1)).strftime("%H:%M"), "timezone": zone}


async def test_quiet_hours_hold_the_push_until_they_end(app: RunningServer, push: PushService) -> None:
    client = await app.client("u1", namespace=NS)
    await client.ok("preferences:set", {"quietHours": quiet_now()})
    await client.ok("push:subscribe", push.browser("b1").subscription())
    await client.disconnect()
    await asyncio.sleep(0.05)
    held = await notify(app)
    read_meanwhile = await notify(app, title="Session cancelled")
    await push.nothing(0.4)
    again = await app.client("u1", namespace=NS)
    await again.ok("notification:read", {"ids": [read_meanwhile["id"]]})  # in-app landed; reading it drops the push
    await again.disconnect()
    app.clock.source = lambda: utcnow() + timedelta(hours=2)
    received = await push.next()
    assert received.payload["id"] == held["id"]
    await push.nothing(0.4)


async def test_a_held_push_is_sent_once_when_two_processes_release_it(app: RunningServer, push: PushService,
                                                                      start_server: StartServer) -> None:
    other = await start_server(push_release_interval_seconds=0.05, push_retry_base_seconds=0.05)  # same database
    client = await app.client("u1", namespace=NS)
    await client.ok("preferences:set", {"quietHours": quiet_now()})
    await client.disconnect()
    await subscribe(app, push, "u1")
    held = [await notify(app, title=f"Session {index}") for index in range(3)]
    await push.nothing(0.3)
    later = lambda: utcnow() + timedelta(hours=2)  # noqa: E731
    app.clock.source = other.clock.source = later
    received = sorted([(await push.next()).payload["id"] for _ in held])
    assert received == sorted(item["id"] for item in held)
    await push.nothing(0.4)
    db = app.app[MONGO_DB]
    assert await db["notification_held_pushes"].count_documents({}) == 0
    states = {doc["pushState"] async for doc in db["notifications"].find({"userId": "u1"})}
    assert states == {"done"}


async def test_critical_ignores_quiet_hours_and_opt_outs(app: RunningServer, push: PushService) -> None:
    client = await app.client("u1", namespace=NS)
    await client.ok("preferences:set", {"quietHours": quiet_now(),
                                        "categories": {"meeting": {"inApp": False, "push": False}}})
    await client.ok("push:subscribe", push.browser("b1").subscription())
    await client.disconnect()
    await asyncio.sleep(0.05)
    await notify(app, category="meeting", title="Meeting moved")
    await push.nothing(0.3)
    critical = await notify(app, category="meeting", title="Meeting starts now", critical=True)
    received = await push.next()
    assert received.payload["id"] == critical["id"] and received.headers["Urgency"] == "high"
    back = await app.client("u1", namespace=NS)
    unread = (await back.ok("notification:list", {"unreadOnly": True}))["items"]
    assert [item["id"] for item in unread] == [critical["id"]]  # the opted-out one is stored, already read


async def test_a_live_socket_means_no_push_unless_always(app: RunningServer, push: PushService) -> None:
    client = await subscribe(app, push, "u1", stay=True)
    created = await notify(app)
    assert (await client.expect("notification:created"))["id"] == created["id"]
    await push.nothing(0.4)
    await client.ok("preferences:set", {"categories": {"booking": {"push": "always"}}})
    always = await notify(app)
    assert (await push.next()).payload["id"] == always["id"]


async def test_subscription_validation_and_limits(app: RunningServer, push: PushService) -> None:
    client = await app.client("u1", namespace=NS)
    good = push.browser("b0").subscription()
    for bad in ({**good, "endpoint": "ftp://x/y"},
                {**good, "keys": {**good["keys"], "p256dh": good["keys"]["p256dh"][:-4]}},
                {**good, "keys": {**good["keys"], "p256dh": "BA" + "A" * 85}},  # not on the curve
                {**good, "keys": {**good["keys"], "auth": "AAAA"}},
                {**good, "extra": 1}):
        await client.error("push:subscribe", bad, "invalid_payload")
    first = await client.ok("push:subscribe", good)
    assert await client.ok("push:subscribe", good) == first  # the same endpoint again is the same subscription
    for index in range(1, 11):
        await client.ok("push:subscribe", push.browser(f"b{index}").subscription())
    subs = app.app[MONGO_DB]["push_subscriptions"]
    endpoints = {doc["endpoint"] async for doc in subs.find({"userId": "u1"})}
    assert len(endpoints) == 10 and good["endpoint"] not in endpoints  # the oldest was dropped
    stranger = await app.client("u2", namespace=NS)
    await stranger.error("push:unsubscribe", {"endpoint": f"{push.url}/push/b1"}, "not_found")
    assert await client.ok("push:unsubscribe", {"endpoint": f"{push.url}/push/b1"}) == {}
    assert await subs.count_documents({"userId": "u1"}) == 9


async def test_production_refuses_plain_http_endpoints(start_server: StartServer) -> None:
    prod = await start_server(careline_env="production")
    client = await prod.client("u1", namespace=NS)
    from tests.notifications.push_service import Browser

    sub = Browser("http://127.0.0.1:9/push/x").subscription()
    await client.error("push:subscribe", sub, "invalid_payload")
    assert await client.ok("push:subscribe", {**sub, "endpoint": "https://push.example.com/x"})


async def test_stats_for_admins(app: RunningServer, push: PushService) -> None:
    await subscribe(app, push, "u1")
    push.answers = [410]
    first = await notify(app)
    await deliveries(app, first["id"])
    await subscribe(app, push, "u1", name="b2")
    second = await notify(app)
    await deliveries(app, second["id"])
    reader = await app.client("u1", namespace=NS)
    await reader.ok("notification:read", {"ids": [second["id"]]})
    admin = await app.client("a1", "admin", namespace=NS)
    stats = await admin.ok("notification:stats", {"days": 1})
    assert stats["categories"]["booking"] == {"sent": 2, "deliveredInApp": 0, "pushed": 1, "failed": 1, "read": 1}
    await reader.error("notification:stats", {}, "forbidden")


async def test_an_endpoint_moves_to_another_user_only_with_its_keys(app: RunningServer, push: PushService) -> None:
    ann = await app.client("ann", namespace=NS)
    ben = await app.client("ben", namespace=NS)
    browser = push.browser("shared")
    await ann.ok("push:subscribe", browser.subscription())
    takeover = {**browser.subscription(), "keys": Browser("x").subscription()["keys"]}  # ann's endpoint, ben's keys
    await ben.error("push:subscribe", takeover, code="conflict")
    await ann.ok("push:unsubscribe", {"endpoint": browser.endpoint})  # still ann's
    await ann.ok("push:subscribe", browser.subscription())
    await ann.disconnect()
    await ben.ok("push:subscribe", browser.subscription())  # the same browser, now logged in as ben
    subs = [doc async for doc in app.app[MONGO_DB]["push_subscriptions"].find({"endpoint": browser.endpoint})]
    assert [doc["userId"] for doc in subs] == ["ben"]
