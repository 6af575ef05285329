"""Catch-up (`notification:list {afterSeq}`) never steps over a seq whose document is still being written."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from realtime.schemas.notifications import NotificationOut
from rest.app_keys import MONGO_DB
from stores.notifications.records import NewNotification
from stores.notifications.seq import SeqCounter
from stores.notifications.store import NotificationStore
from tests.conftest import RunningServer

WIRE = NotificationOut()

NS = "/notifications"
CONTENT = NewNotification("system", "Slow", "Body", {})


async def notify(server: RunningServer, user_id: str, title: str) -> dict:
    """One notification through the Notifier interface."""
    created = await server.notifications.notifications.notify(user_id, category="system", title=title, body="Body")
    assert created is not None
    return WIRE.dump(created)


async def test_catch_up_stops_before_a_notification_still_being_written(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    first = await notify(server, "u1", "First")
    other_process = NotificationStore(server.app[MONGO_DB])  # a writer elsewhere, between its seq and its insert
    async with other_process.seq_lease() as lease:
        slow_seq = await lease.seq()
        late = await notify(server, "u1", "Late")
        assert late["seq"] == slow_seq + 1
        assert (await client.expect("notification:created"))["id"] == first["id"]
        assert await client.expect("notification:created") == late  # live delivery is not held back
        held = await client.ok("notification:list", {"afterSeq": first["seq"]})
        assert held == {"items": [], "nextCursor": str(first["seq"])}  # stepping to `late` would lose slow_seq
        newest = await client.ok("notification:list", {})
        assert [item["id"] for item in newest["items"]] == [late["id"], first["id"]]
        slow = await other_process.create("u1", slow_seq, CONTENT)
        assert slow is not None
        still = await client.ok("notification:list", {"afterSeq": first["seq"], "cursor": held["nextCursor"]})
        assert still == held  # written, but its writer has not finished yet
    page = await client.ok("notification:list", {"afterSeq": first["seq"], "cursor": held["nextCursor"]})
    assert [item["seq"] for item in page["items"]] == [slow_seq, late["seq"]] and page["nextCursor"] is None
    assert page["items"][0]["id"] == slow.id and page["items"][0]["title"] == "Slow"


async def test_a_pending_seq_holds_back_only_the_seqs_after_it(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    first = await notify(server, "u1", "First")
    async with NotificationStore(server.app[MONGO_DB]).seq_lease() as lease:
        pending = await lease.seq()
        later = await notify(server, "u1", "Later")
        ahead = await client.ok("notification:list", {"afterSeq": 0, "limit": 5})
        assert [item["id"] for item in ahead["items"]] == [first["id"]] and ahead["nextCursor"] == str(first["seq"])
        past = await client.ok("notification:list", {"afterSeq": pending})  # the client is already past it
        assert [item["id"] for item in past["items"]] == [later["id"]] and past["nextCursor"] is None


async def test_a_seq_whose_writer_died_is_passed_after_its_hold(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    counters = server.app[MONGO_DB]["notification_counters"]
    lost = await SeqCounter(server.app[MONGO_DB]).allocate(hold=timedelta(seconds=0.5))  # never written or released
    after = await notify(server, "u1", "After")
    assert (await client.ok("notification:list", {"afterSeq": 0}))["items"] == []
    await asyncio.sleep(0.6)
    page = await client.ok("notification:list", {"afterSeq": 0})
    assert [item["id"] for item in page["items"]] == [after["id"]] and page["nextCursor"] is None
    stored = await counters.find_one({"_id": "seq"})
    assert stored is not None and stored["seq"] == after["seq"] == lost + 1 and stored["pending"] == []


async def test_catch_up_pages_through_own_notifications_and_broadcasts_in_seq_order(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    client = await server.client("u1", namespace=NS)
    own = [await notify(server, "u1", "One")]
    await admin.ok("notification:broadcast", {"role": "client", "title": "Two", "body": "All"})
    own.append(await notify(server, "u1", "Three"))
    await admin.ok("notification:broadcast", {"role": "client", "title": "Four", "body": "All"})
    await notify(server, "u2", "Elsewhere")
    page = await client.ok("notification:list", {"afterSeq": 0, "limit": 3})
    assert [item["title"] for item in page["items"]] == ["One", "Two", "Three"] and page["nextCursor"] == "3"
    rest = await client.ok("notification:list", {"afterSeq": 0, "limit": 3, "cursor": page["nextCursor"]})
    assert [(item["title"], item["seq"]) for item in rest["items"]] == [("Four", 4)] and rest["nextCursor"] is None
    await client.ok("notification:read", {"ids": [page["items"][1]["id"], own[1]["id"]]})
    unread = await client.ok("notification:list", {"unreadOnly": True})
    assert [item["title"] for item in unread["items"]] == ["Four", "One"]
    assert await client.ok("notification:read-all") == {"unreadCount": 0}
    assert (await client.ok("notification:list", {"unreadOnly": True}))["items"] == []
    listed = (await client.ok("notification:list", {}))["items"]
    assert [item["title"] for item in listed] == ["Four", "Three", "Two", "One"] and all(i["readAt"] for i in listed)
