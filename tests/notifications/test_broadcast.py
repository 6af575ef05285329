"""Admin broadcasts to a role: emitted once to connected users, listed for everyone of that role."""
from __future__ import annotations

from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer

NS = "/notifications"


async def test_broadcast_reaches_connected_users_and_is_listed_for_offline_ones(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    online = await server.client("c1", "client", namespace=NS)
    offline = await server.client("c2", "client", namespace=NS)
    therapist = await server.client("t1", "therapist", namespace=NS)
    await offline.disconnect()
    result = await admin.ok("notification:broadcast", {"role": "client", "title": "Maintenance tonight",
                                                      "body": "careline is down 02:00-03:00 UTC",
                                                      "category": "system"})
    assert result == {"count": 2}
    pushed = await online.expect("notification:created")
    assert pushed["title"] == "Maintenance tonight" and pushed["category"] == "system"
    await therapist.absent("notification:created", within=0.2)
    listed = await online.ok("notification:list", {})
    assert listed["items"][0]["id"] == pushed["id"] and listed["items"][0]["seq"] == 1
    back = await server.client("c2", "client", namespace=NS)
    assert await back.expect("notification:unread") == {"unreadCount": 1}
    items = (await back.ok("notification:list", {"unreadOnly": True}))["items"]
    assert [item["title"] for item in items] == ["Maintenance tonight"]
    assert await back.ok("notification:read", {"ids": [items[0]["id"]]}) == {"unreadCount": 0}
    assert await online.ok("notification:unread-count") == {"unreadCount": 1}


async def test_broadcast_takes_seqs_after_earlier_notifications(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    client = await server.client("c1", "client", namespace=NS)
    await server.notifications.notifications.notify("c1", category="system", title="t", body="b")
    await admin.ok("notification:broadcast", {"role": "client", "title": "Hello", "body": "All"})
    await server.notifications.notifications.notify("c1", category="system", title="t2", body="b")
    seqs = [item["seq"] for item in (await client.ok("notification:list", {}))["items"]]
    assert seqs == [3, 2, 1]


async def test_non_admins_may_not_broadcast(server: RunningServer) -> None:
    therapist = await server.client("t1", "therapist", namespace=NS)
    client = await server.client("c1", "client", namespace=NS)
    for caller in (therapist, client):
        await caller.error("notification:broadcast", {"role": "client", "title": "x", "body": "y"}, "forbidden")
    await client.absent("notification:created", within=0.2)
    assert await client.ok("notification:unread-count") == {"unreadCount": 0}


async def test_broadcast_payload_is_validated(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    await admin.error("notification:broadcast", {"role": "root", "title": "x", "body": "y"}, "invalid_payload")
    await admin.error("notification:broadcast", {"role": "client", "title": "", "body": "y"}, "invalid_payload")
    await admin.error("notification:broadcast", {"role": "client", "title": "x", "body": "y",
                                                 "category": "message"}, "invalid_payload")


async def test_a_broadcast_is_stored_once_with_a_small_receipt_per_user(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace=NS)
    online = await server.client("c1", "client", namespace=NS)
    await (await server.client("c2", "client", namespace=NS)).disconnect()
    await server.client("t1", "therapist", namespace=NS)
    assert await admin.ok("notification:broadcast", {"role": "client", "title": "Hello", "body": "All"}) == {"count": 2}
    pushed = await online.expect("notification:created")
    db = server.app[MONGO_DB]
    bodies = await db["notification_broadcasts"].find().to_list()
    assert [(b["_id"], b["seq"], b["title"], b["sent"], b["deliveredInApp"], b["read"]) for b in bodies] == [
        (pushed["id"], pushed["seq"], "Hello", 2, 1, 0)]
    receipts = await db["notification_receipts"].find().sort("_id").to_list()
    assert receipts == [{"_id": f"{pushed['seq']}:c1"}, {"_id": f"{pushed['seq']}:c2"}]
    assert await db["notifications"].count_documents({}) == 0
    for _ in range(2):  # reading twice counts once
        assert await online.ok("notification:read", {"ids": [pushed["id"]]}) == {"unreadCount": 0}
    read = await db["notification_receipts"].find_one({"_id": f"{pushed['seq']}:c1"})
    assert read is not None and read["readAt"] is not None
    stats = await admin.ok("notification:stats", {"days": 1})
    assert stats["categories"]["system"] == {"sent": 2, "deliveredInApp": 1, "pushed": 0, "failed": 0, "read": 1}
