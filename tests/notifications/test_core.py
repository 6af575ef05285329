"""Notifications: real-time delivery across processes, reading, unread counts, catch-up, exactly-once."""
from __future__ import annotations

import asyncio

from realtime.schemas.notifications import NotificationOut
from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer, StartServer

WIRE = NotificationOut()

NS = "/notifications"


async def notify(server: RunningServer, user_id: str, n: int = 1, **extra: object) -> list[dict]:
    """Create `n` notifications for a user through the Notifier interface."""
    created = []
    for index in range(n):
        made = await server.notifications.notifications.notify(
            user_id, category="system", title=f"Title {index}", body="Body", **extra)  # type: ignore[arg-type]
        created.append(None if made is None else WIRE.dump(made))
    return created


async def test_delivered_to_every_socket_of_the_user_across_processes(start_server: StartServer) -> None:
    first, second = await start_server(redis=True), await start_server(redis=True)
    on_first = await first.client("u1", namespace=NS)
    on_second = await second.client("u1", namespace=NS)
    stranger = await second.client("u2", namespace=NS)
    for client in (on_first, on_second, stranger):
        await client.expect("notification:unread")  # the count each socket gets on connect
    created = await second.notifications.notifications.notify("u1", category="booking", title="Session confirmed",
                                                         body="Tue 24 Nov 2026, 10:00 UTC", data={"bookingId": "b1"})
    assert created is not None and created.seq == 1
    for client in (on_first, on_second):
        pushed = await client.expect("notification:created")
        assert pushed == WIRE.dump(created)
        assert set(pushed) == {"id", "seq", "category", "title", "body", "data", "critical", "readAt", "createdAt"}
        assert pushed["readAt"] is None and pushed["createdAt"].endswith("Z")
        assert await client.expect("notification:unread") == {"unreadCount": 1}
    await stranger.absent("notification:created", within=0.3)


async def test_read_read_all_and_unread_counts(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    other = await server.client("u2", namespace=NS)
    mine = await notify(server, "u1", 3)
    theirs = await notify(server, "u2", 1)
    assert await client.ok("notification:unread-count") == {"unreadCount": 3}
    await client.expect("notification:unread", lambda d: d == {"unreadCount": 3})
    client.events["notification:unread"].clear()  # the pushes of the creates: what follows is the read's
    second = await server.client("u1", namespace=NS)
    await second.expect("notification:unread")  # its count on connect
    assert await client.ok("notification:read", {"ids": [mine[0]["id"]]}) == {"unreadCount": 2}
    for socket in (client, second):  # every socket of the user hears the new count
        assert await socket.expect("notification:unread") == {"unreadCount": 2}
    # Someone else's id, or an unknown one, changes nothing.
    assert await client.ok("notification:read", {"ids": [theirs[0]["id"], "nope"]}) == {"unreadCount": 2}
    assert await other.ok("notification:unread-count") == {"unreadCount": 1}
    unread = await client.ok("notification:list", {"unreadOnly": True})
    assert [item["id"] for item in unread["items"]] == [mine[2]["id"], mine[1]["id"]]
    assert await client.ok("notification:read-all") == {"unreadCount": 0}
    listed = await client.ok("notification:list", {})
    assert all(item["readAt"] for item in listed["items"]) and len(listed["items"]) == 3
    assert await other.ok("notification:unread-count") == {"unreadCount": 1}


async def test_pagination_and_catch_up_after_reconnect(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    await notify(server, "u1", 2)
    seen = (await client.ok("notification:list", {}))["items"]
    last_seq = max(item["seq"] for item in seen)
    await client.disconnect()
    missed = await notify(server, "u1", 5)
    again = await server.client("u1", namespace=NS)
    page = await again.ok("notification:list", {"afterSeq": last_seq, "limit": 3})
    assert [item["seq"] for item in page["items"]] == [3, 4, 5]
    rest = await again.ok("notification:list", {"afterSeq": last_seq, "limit": 3, "cursor": page["nextCursor"]})
    assert [item["seq"] for item in rest["items"]] == [6, 7] and rest["nextCursor"] is None
    assert [item["id"] for item in page["items"] + rest["items"]] == [n["id"] for n in missed]
    newest = await again.ok("notification:list", {"limit": 4})
    assert [item["seq"] for item in newest["items"]] == [7, 6, 5, 4]
    older = await again.ok("notification:list", {"limit": 4, "cursor": newest["nextCursor"]})
    assert [item["seq"] for item in older["items"]] == [3, 2, 1]


async def test_dedupe_key_creates_exactly_once(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    await client.expect("notification:unread")
    results = await asyncio.gather(*(server.notifications.notifications.notify(
        "u1", category="billing", title="Payment received", body="Thank you", dedupe_key="pay:1")
        for _ in range(5)))
    assert sum(result is not None for result in results) == 1
    assert await server.notifications.notifications.notify("u2", category="billing", title="t", body="b",
                                                      dedupe_key="pay:1") is not None  # per user
    await client.expect("notification:created")
    await client.absent("notification:created", within=0.3)
    assert await server.app[MONGO_DB]["notifications"].count_documents({"userId": "u1"}) == 1


async def test_bad_requests_change_nothing(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    await notify(server, "u1", 1)
    await client.error("notification:read", {"ids": []}, "invalid_payload")
    await client.error("notification:read", {"ids": "x"}, "invalid_payload")
    await client.error("notification:list", {"cursor": "abc"}, "invalid_payload")
    await client.error("notification:list", {"afterSeq": -1}, "invalid_payload")
    await client.error("notification:read-all", {"extra": 1}, "invalid_payload")
    assert await client.ok("notification:unread-count") == {"unreadCount": 1}


async def test_the_unread_count_stays_exact_under_concurrent_creates_and_reads(start_server: StartServer) -> None:
    first, second = await start_server(redis=True), await start_server(redis=True)
    here, there = await first.client("u1", namespace=NS), await second.client("u1", namespace=NS)
    await notify(first, "u1", 5)
    # Creates on two processes race reads on both (some read what was just created, some nothing).
    work = [notify(first, "u1", 5), notify(second, "u1", 5), here.ok("notification:read-all"),
            there.ok("notification:read-all"), notify(second, "u1", 3)]
    await asyncio.gather(*work)
    stored = await first.app[MONGO_DB]["notifications"].count_documents({"userId": "u1", "readAt": None})
    assert await here.ok("notification:unread-count") == {"unreadCount": stored}
    mine = await here.ok("notification:list", {"unreadOnly": True, "limit": 100})
    assert len(mine["items"]) == stored
    assert await there.ok("notification:read", {"ids": [item["id"] for item in mine["items"]]}) == {"unreadCount": 0}
    assert await here.ok("notification:unread-count") == {"unreadCount": 0}
    # A duplicate (dedupe key) is not counted.
    await notify(first, "u1", 1, dedupe_key="once")
    assert await notify(second, "u1", 1, dedupe_key="once") == [None]
    assert await there.ok("notification:unread-count") == {"unreadCount": 1}


async def test_notifications_stored_before_unread_counters_are_counted(server: RunningServer) -> None:
    await notify(server, "u1", 3)
    await notify(server, "u2", 1)
    db = server.app[MONGO_DB]  # type: ignore[index]
    await db["notification_unread"].delete_many({})  # as stored before the counters existed
    await server.notifications.notifications._store.ensure_indexes()  # start-up
    client = await server.client("u1", namespace=NS)
    assert await client.ok("notification:unread-count") == {"unreadCount": 3}
    assert await client.ok("notification:read-all") == {"unreadCount": 0}
    other = await server.client("u2", namespace=NS)
    assert await other.ok("notification:unread-count") == {"unreadCount": 1}
