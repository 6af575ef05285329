"""Reads that arrive together share one database round trip (a restart storm's catch-ups and connects), and
each caller still gets only their own notifications, broadcasts and unread count."""
from __future__ import annotations

import asyncio

from realtime.schemas.notifications import NotificationOut
from rest.app_keys import MONGO_DB
from stores.notifications.store import NotificationStore
from tests.clients import SioClient
from tests.conftest import RunningServer

NS = "/notifications"
WIRE = NotificationOut()
USERS = ("u1", "u2", "u3")


async def notify(server: RunningServer, user_id: str, title: str) -> dict:
    """One notification through the Notifier interface."""
    created = await server.notifications.notifications.notify(user_id, category="system", title=title, body="Body")
    assert created is not None
    return WIRE.dump(created)


async def connect_together(server: RunningServer, users: list[tuple[str, str]]) -> list[SioClient]:
    """Sockets of these (user, role) pairs connecting at the same moment (their connect reads go out together)."""
    return list(await asyncio.gather(*(server.client(user, role, namespace=NS) for user, role in users)))


async def test_catch_ups_asked_together_each_return_only_the_callers_notifications(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    clients = await connect_together(server, [(user, "client") for user in USERS] + [("t1", "therapist")])
    titles = {user: [(await notify(server, user, f"{user} one"))["title"]] for user in USERS}
    await admin.ok("notification:broadcast", {"role": "client", "title": "To clients", "body": "All"})
    for user in USERS:
        titles[user].append((await notify(server, user, f"{user} two"))["title"])
    pages = await asyncio.gather(*(client.ok("notification:list", {"afterSeq": 0}) for client in clients))
    for user, page in zip(USERS, pages, strict=False):
        assert [item["title"] for item in page["items"]] == [titles[user][0], "To clients", titles[user][1]]
        assert page["nextCursor"] is None
    assert pages[-1] == {"items": [], "nextCursor": None}  # the therapist got neither the clients' nor the broadcast
    later = await asyncio.gather(*(client.ok("notification:list", {"afterSeq": 6}) for client in clients))
    assert [[item["title"] for item in page["items"]] for page in later] == [[], [], ["u3 two"], []]


async def test_catch_ups_asked_together_each_stop_before_a_seq_still_being_written(server: RunningServer) -> None:
    firsts = [await notify(server, user, "First") for user in USERS]
    clients = await connect_together(server, [(user, "client") for user in USERS])
    async with NotificationStore(server.app[MONGO_DB]).seq_lease() as lease:
        pending = await lease.seq()
        later = await notify(server, "u1", "Later")
        pages = await asyncio.gather(*(client.ok("notification:list", {"afterSeq": 0}) for client in clients))
        assert [[item["id"] for item in page["items"]] for page in pages] == [[first["id"]] for first in firsts]
        assert all(page["nextCursor"] is not None for page in pages)  # held: ask again
        past = await asyncio.gather(*(client.ok("notification:list", {"afterSeq": pending}) for client in clients))
        assert [[item["id"] for item in page["items"]] for page in past] == [[later["id"]], [], []]


async def test_unread_counts_read_together_are_each_users_own(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    users = [("u1", "client"), ("u2", "client"), ("u3", "client"), ("t1", "therapist"), ("t2", "therapist")]
    first = await connect_together(server, users)
    assert [(await client.expect("notification:unread"))["unreadCount"] for client in first] == [0] * len(users)
    for client in first:
        await client.disconnect()
    for _ in range(3):
        await notify(server, "u1", "For u1")
    await notify(server, "u2", "For u2")
    await admin.ok("notification:broadcast", {"role": "client", "title": "To clients", "body": "All"})
    await notify(server, "t1", "For t1")
    clients = await connect_together(server, users)
    expected = [4, 2, 1, 1, 0]
    on_connect = [(await client.expect("notification:unread"))["unreadCount"] for client in clients]
    assert on_connect == expected
    asked = await asyncio.gather(*(client.ok("notification:unread-count") for client in clients))
    assert [each["unreadCount"] for each in asked] == expected
    await clients[0].ok("notification:read-all")
    asked = await asyncio.gather(*(client.ok("notification:unread-count") for client in clients))
    assert [each["unreadCount"] for each in asked] == [0, 2, 1, 1, 0]


async def test_notifications_created_together_take_distinct_seqs_and_release_them_all(server: RunningServer) -> None:
    """Seqs allocated together are one update of the counter: each notification still has its own seq, each
    user gets only theirs, and no seq stays pending (catch-up is not held back)."""
    clients = await connect_together(server, [(user, "client") for user in USERS])
    created = await asyncio.gather(*(notify(server, user, f"{user} {n}") for n in range(4) for user in USERS))
    seqs = [item["seq"] for item in created]
    assert sorted(seqs) == list(range(1, len(created) + 1))
    pages = await asyncio.gather(*(client.ok("notification:list", {"afterSeq": 0}) for client in clients))
    for user, page in zip(USERS, pages, strict=True):
        mine = sorted((item for item in created if item["title"].startswith(user)), key=lambda item: item["seq"])
        assert page == {"items": mine, "nextCursor": None}
    counter = await server.app[MONGO_DB]["notification_counters"].find_one({"_id": "seq"})
    assert counter is not None and counter["seq"] == len(created) and counter["pending"] == []
