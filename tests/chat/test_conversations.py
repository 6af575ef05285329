"""conversation:open / list / join / leave: kinds, uniqueness, roles, pagination, unread counts."""
from __future__ import annotations

import asyncio

from rest.app_keys import MONGO_DB
from tests.chat.helpers import direct, members, send
from tests.conftest import RunningServer, StartServer


async def test_open_returns_the_same_direct_conversation_for_the_pair(server: RunningServer) -> None:
    _alice, bob, conversation = await direct(server, join=False)
    assert conversation["kind"] == "client_therapist"
    assert sorted(conversation["memberIds"]) == ["alice", "bob"]
    assert conversation["lastSeq"] == 0 and conversation["createdBy"] == "alice"
    again = await bob.ok("conversation:open", {"memberIds": ["alice"]})
    assert again["id"] == conversation["id"]
    created = await bob.expect("conversation:created")
    assert created["id"] == conversation["id"]


async def test_concurrent_opens_create_one_conversation(server: RunningServer) -> None:
    alice, bob = await members(server, ("alice", "client"), ("bob", "therapist"))
    results = await asyncio.gather(*(c.ok("conversation:open", {"memberIds": [o]})
                                     for c, o in [(alice, "bob"), (bob, "alice")] * 5))
    assert len({r["id"] for r in results}) == 1
    assert await server.app[MONGO_DB]["chat_conversations"].count_documents({}) == 1  # type: ignore[index]


async def test_kinds_follow_roles(server: RunningServer) -> None:
    c1, _c2, t1, _t2, admin = await members(server, ("c1", "client"), ("c2", "client"), ("t1", "therapist"),
                                          ("t2", "therapist"), ("a1", "admin"))
    assert (await c1.ok("conversation:open", {"memberIds": ["c2"]}))["kind"] == "client_client"
    assert (await t1.ok("conversation:open", {"memberIds": ["t2"]}))["kind"] == "therapist_therapist"
    assert (await c1.ok("conversation:open", {"memberIds": ["t1"]}))["kind"] == "client_therapist"
    assert (await admin.ok("conversation:open", {"memberIds": ["c1"]}))["kind"] == "client_therapist"
    group = await t1.ok("conversation:open", {"memberIds": ["c1", "c2"], "title": "Group", "requestId": "g1"})
    assert group["kind"] == "group" and group["title"] == "Group" and len(group["memberIds"]) == 3
    repeat = await t1.ok("conversation:open", {"memberIds": ["c1", "c2"], "title": "Group", "requestId": "g1"})
    assert repeat["id"] == group["id"]
    other = await t1.ok("conversation:open", {"memberIds": ["c1", "c2"], "requestId": "g2"})
    assert other["id"] != group["id"]


async def test_only_staff_create_groups_and_bad_members_are_refused(server: RunningServer) -> None:
    c1, _c2, _t1 = await members(server, ("c1", "client"), ("c2", "client"), ("t1", "therapist"))
    await c1.error("conversation:open", {"memberIds": ["c2", "t1"]}, code="forbidden")
    await c1.error("conversation:open", {"memberIds": ["c1"]}, code="invalid_payload")
    await c1.error("conversation:open", {"memberIds": []}, code="invalid_payload")
    await c1.error("conversation:open", {"memberIds": ["nobody-ever-connected"]}, code="not_found")
    await c1.error("conversation:open", {"memberIds": [5]}, code="invalid_payload")
    assert await server.app[MONGO_DB]["chat_conversations"].count_documents({}) == 0  # type: ignore[index]


async def test_client_to_client_can_be_switched_off(start_server: StartServer) -> None:
    server = await start_server(chat_client_to_client="false")
    c1, _c2, _t1 = await members(server, ("c1", "client"), ("c2", "client"), ("t1", "therapist"))
    await c1.error("conversation:open", {"memberIds": ["c2"]}, code="forbidden")
    assert (await c1.ok("conversation:open", {"memberIds": ["t1"]}))["kind"] == "client_therapist"


async def test_list_orders_by_activity_with_unread_and_last_message(server: RunningServer) -> None:
    me, a, b, c = await members(server, ("me", "client"), ("a", "therapist"), ("b", "therapist"),
                                ("c", "therapist"))
    conv_a, conv_b, conv_c = [(await o.ok("conversation:open", {"memberIds": ["me"]}))["id"] for o in (a, b, c)]
    await send(b, conv_b, "one")
    await send(b, conv_b, "two")
    await send(a, conv_a, "three")
    mine = await send(me, conv_c, "mine")
    listed = await me.ok("conversation:list", {"limit": 2})
    assert [item["id"] for item in listed["items"]] == [conv_c, conv_a]
    assert listed["items"][0]["unreadCount"] == 0
    assert listed["items"][0]["lastMessage"]["id"] == mine["id"]
    assert listed["items"][1]["unreadCount"] == 1 and listed["items"][1]["lastMessage"]["text"] == "three"
    rest = await me.ok("conversation:list", {"limit": 2, "cursor": listed["nextCursor"]})
    assert [item["id"] for item in rest["items"]] == [conv_b] and rest["nextCursor"] is None
    assert rest["items"][0]["unreadCount"] == 2
    await me.ok("message:read", {"conversationId": conv_b, "seq": 1})
    again = await me.ok("conversation:list", {"limit": 10})
    assert {i["id"]: i["unreadCount"] for i in again["items"]}[conv_b] == 1
    await me.error("conversation:list", {"cursor": "not-a-cursor"}, code="invalid_payload")
    lonely = (await members(server, ("lonely", "client")))[0]
    assert await lonely.ok("conversation:list", {}) == {"items": [], "nextCursor": None}


async def test_join_gives_presence_and_events_leave_stops_them(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server, join=False)
    joined = await alice.ok("conversation:join", {"conversationId": conversation["id"]})
    assert joined["conversation"]["id"] == conversation["id"]
    assert joined["presence"] == {"alice": "online"}  # bob has not joined or written in alice's conversation yet
    await send(bob, conversation["id"], "hi")
    assert (await alice.expect("message:created"))["text"] == "hi"
    assert (await alice.expect("presence:changed"))["userId"] == "bob"  # from his first message on
    joined = await alice.ok("conversation:join", {"conversationId": conversation["id"]})
    assert joined["presence"] == {"alice": "online", "bob": "online"}
    assert await alice.ok("conversation:leave", {"conversationId": conversation["id"]}) == {}
    await send(bob, conversation["id"], "again")
    await alice.absent("message:created", within=0.3)
    await bob.disconnect()
    await asyncio.sleep(0.1)
    joined = await alice.ok("conversation:join", {"conversationId": conversation["id"]})
    assert joined["presence"]["bob"] == "offline"


async def test_group_size_is_a_setting(start_server: StartServer) -> None:
    server = await start_server(chat_group_max_members=3)
    staff = await server.client("t1", "therapist")
    for n in range(5):
        await server.client(f"c{n}")
    error = await staff.error("conversation:open", {"memberIds": ["c0", "c1", "c2", "c3"]}, code="invalid_payload")
    assert error["details"] == {"memberIds": ["At most 3 other members."]}
    assert (await staff.ok("conversation:open", {"memberIds": ["c0", "c1", "c2"]}))["memberIds"]


async def test_joins_arriving_together_each_get_their_own_answer(server: RunningServer) -> None:
    """A restarted process's clients rejoin at once: their reads are batched, each still judged alone."""
    therapist = await server.client("t-storm", "therapist")
    clients = await members(server, *((f"c-storm-{i}", "client") for i in range(6)))
    first = await therapist.ok("conversation:open", {"memberIds": [f"c-storm-{i}" for i in range(3)],
                                                     "requestId": "s1"})
    second = await therapist.ok("conversation:open", {"memberIds": [f"c-storm-{i}" for i in range(3, 6)],
                                                      "requestId": "s2"})
    await send(therapist, second["id"], "before the storm")
    own = [first if i < 3 else second for i in range(6)]
    other = [second if i < 3 else first for i in range(6)]

    joined = await asyncio.gather(*(c.ok("conversation:join", {"conversationId": conv["id"]})
                                    for c, conv in zip(clients, own, strict=True)))
    refused = await asyncio.gather(*(c.error("conversation:join", {"conversationId": conv["id"]}, code="not_found")
                                     for c, conv in zip(clients, other, strict=True)),
                                   clients[0].error("conversation:join", {"conversationId": "no-such-id"},
                                                    code="not_found"))

    assert [j["conversation"]["id"] for j in joined] == [c["id"] for c in own]
    assert [j["conversation"]["lastSeq"] for j in joined] == [0, 0, 0, 1, 1, 1]
    assert all(j["presence"][f"c-storm-{i}"] == "online" for i, j in enumerate(joined))
    assert len(refused) == 7
    await send(therapist, second["id"], "after the storm")
    for client in clients[3:]:
        assert (await client.expect("message:created"))["text"] == "after the storm"


async def test_catch_ups_of_more_conversations_than_one_query_names_each_get_their_own(server: RunningServer) -> None:
    """Joins and history reads of 40 conversations at once: their reads go out in several `$in` queries
    (stores.mongo.IN_CHUNK values each); every member still gets only their own conversation."""
    therapists = await members(server, ("t-many-0", "therapist"), ("t-many-1", "therapist"))  # 20 opens each
    clients = await members(server, *((f"c-many-{i}", "client") for i in range(40)))
    opened = [await therapists[i % 2].ok("conversation:open", {"memberIds": [f"c-many-{i}"]}) for i in range(40)]
    for i, (client, conversation) in enumerate(zip(clients, opened, strict=True)):
        await send(client, conversation["id"], f"to c-many-{i}")
    joined, histories, refused = await asyncio.gather(
        asyncio.gather(*(c.ok("conversation:join", {"conversationId": conv["id"]})
                         for c, conv in zip(clients, opened, strict=True))),
        asyncio.gather(*(c.ok("message:history", {"conversationId": conv["id"], "afterSeq": 0})
                         for c, conv in zip(clients, opened, strict=True))),
        asyncio.gather(*(c.error("message:history", {"conversationId": opened[(i + 1) % 40]["id"], "afterSeq": 0},
                                 code="not_found") for i, c in enumerate(clients))))
    assert [j["conversation"]["id"] for j in joined] == [conv["id"] for conv in opened]
    assert all(j["conversation"]["lastSeq"] == 1 for j in joined)
    assert [[m["text"] for m in h["items"]] for h in histories] == [[f"to c-many-{i}"] for i in range(40)]
    assert len(refused) == 40
