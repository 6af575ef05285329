"""Receipts, typing, presence (across processes) and the message.created domain event."""
from __future__ import annotations

import asyncio

from handlers.events import ConversationRead, MessageCreated
from tests.chat.helpers import direct, send
from tests.conftest import RunningServer, StartServer


async def test_receipts_move_forward_only_and_broadcast(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    cid = conversation["id"]
    read_events: list[ConversationRead] = []

    async def record(event: ConversationRead) -> None:
        read_events.append(event)

    server.shared.bus.subscribe(ConversationRead, record)
    for text in ("one", "two", "three"):
        await send(alice, cid, text)
    assert await bob.ok("message:delivered", {"conversationId": cid, "seq": 3}) == {}
    assert await alice.expect("receipt:updated") == {"conversationId": cid, "userId": "bob", "deliveredSeq": 3,
                                                     "readSeq": 0}
    assert await bob.ok("message:read", {"conversationId": cid, "seq": 2}) == {}
    assert await alice.expect("receipt:updated") == {"conversationId": cid, "userId": "bob", "deliveredSeq": 3,
                                                     "readSeq": 2}
    await bob.ok("message:read", {"conversationId": cid, "seq": 1})  # backwards: nothing moves
    await bob.ok("message:delivered", {"conversationId": cid, "seq": 2})
    await alice.absent("receipt:updated", within=0.3)
    await bob.ok("message:read", {"conversationId": cid, "seq": 999})  # clamped to lastSeq
    assert (await alice.expect("receipt:updated"))["readSeq"] == 3
    assert (await bob.ok("conversation:list", {}))["items"][0]["unreadCount"] == 0
    await server.chat.deps.activity.flush()  # the sender's reads are announced once written
    await server.shared.bus.drain()
    # Sending reads up to one's own message; a burst of sends is announced once, when written.
    assert sorted((e.user_id, e.seq) for e in read_events) == [
        ("alice", 3), ("bob", 2), ("bob", 3)]
    await bob.error("message:read", {"conversationId": cid, "seq": -1}, code="invalid_payload")


async def test_typing_reaches_others_only_throttled_and_stops_itself(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    alice_tab = await server.client("alice", "client")
    await alice_tab.ok("conversation:join", {"conversationId": conversation["id"]})
    server.chat.typing.timeout = 0.6
    cid = conversation["id"]
    for _ in range(3):
        assert await alice.ok("typing:start", {"conversationId": cid}) == {}
    assert await bob.expect("typing") == {"conversationId": cid, "userId": "alice", "isTyping": True}
    await bob.absent("typing", within=0.3)
    assert await alice.ok("typing:stop", {"conversationId": cid}) == {}
    assert (await bob.expect("typing"))["isTyping"] is False
    await alice.ok("typing:stop", {"conversationId": cid})  # not typing: nothing to say
    await alice.ok("typing:start", {"conversationId": cid})
    assert (await bob.expect("typing"))["isTyping"] is True
    assert (await bob.expect("typing", timeout=2))["isTyping"] is False  # automatic stop
    for client in (alice, alice_tab):
        await client.absent("typing", within=0.05)
    assert server.chat.typing._states == {}


async def test_typing_stops_when_the_typist_disconnects(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    await alice.ok("typing:start", {"conversationId": conversation["id"]})
    await bob.expect("typing")
    await alice.disconnect()
    assert (await bob.expect("typing"))["isTyping"] is False


async def test_presence_across_two_processes(start_server: StartServer) -> None:
    one, two = await start_server(redis=True), await start_server(redis=True)
    alice = await one.client("alice", "client")
    bob = await two.client("bob", "therapist")
    conversation = await alice.ok("conversation:open", {"memberIds": ["bob"]})
    joined = await bob.ok("conversation:join", {"conversationId": conversation["id"]})
    assert joined["presence"] == {"alice": "online", "bob": "online"}
    stranger = await two.client("stranger", "client")
    alice_tab = await one.client("alice", "client")
    await alice_tab.disconnect()
    await alice.disconnect()
    changed = await bob.expect("presence:changed")
    assert changed["userId"] == "alice" and changed["status"] == "offline" and changed["lastSeenAt"].endswith("Z")
    assert (await bob.ok("conversation:join", {"conversationId": conversation["id"]}))["presence"]["alice"] == \
        "offline"
    record = await two.shared.users.get("alice")
    assert record is not None and record.last_seen_at is not None
    await one.client("alice", "client")
    assert (await bob.expect("presence:changed"))["status"] == "online"
    await bob.absent("presence:changed", within=0.2)  # one offline, one online: no flapping for the tab
    await stranger.absent("presence:changed", within=0.05)


async def test_message_created_event_names_absent_members(server: RunningServer) -> None:
    events: list[MessageCreated] = []

    async def record(event: MessageCreated) -> None:
        events.append(event)

    server.shared.bus.subscribe(MessageCreated, record)
    staff = await server.client("t1", "therapist")
    viewer, _away = await server.client("c1"), await server.client("c2")
    conversation = await staff.ok("conversation:open", {"memberIds": ["c1", "c2"]})
    await viewer.ok("conversation:join", {"conversationId": conversation["id"]})
    message = await send(staff, conversation["id"], "hello group")
    await server.shared.bus.drain()
    (event,) = events
    assert event.message.id == message["id"] and event.message.text == "hello group"
    assert event.message.conversation_id == conversation["id"]
    assert (event.sender.id, event.sender.role, event.sender.name) == ("t1", "therapist", "T1")
    assert event.absent_member_ids == ("c2",)
    await viewer.ok("conversation:leave", {"conversationId": conversation["id"]})
    await send(staff, conversation["id"], "again")
    await server.shared.bus.drain()
    assert sorted(events[1].absent_member_ids) == ["c1", "c2"]


async def test_going_offline_moves_last_seen_at_written_behind(server: RunningServer) -> None:
    alice = await server.client("alice", "client")
    first = await server.shared.users.get("alice")
    assert first is not None and first.last_seen_at is not None
    await asyncio.sleep(0.01)
    await alice.disconnect()
    for _ in range(50):  # the offline bookkeeping runs after the disconnect
        await server.shared.users.flush_touched()
        later = await server.shared.users.get("alice")
        if later is not None and later.last_seen_at != first.last_seen_at:
            break
        await asyncio.sleep(0.05)
    assert later is not None and later.last_seen_at is not None and later.last_seen_at > first.last_seen_at


async def test_a_connect_and_disconnect_wave_across_two_processes_announces_each_user_once(
        start_server: StartServer) -> None:
    """Registrations of a wave share Redis pipelines and announcements share reads: each count stays exact."""
    one, two = await start_server(redis=True), await start_server(redis=True)
    staff = await one.client("staff", "therapist")
    members = [f"m{index}" for index in range(12)]
    for member in members:  # known users (as after an earlier connect), not connected now
        await one.shared.users.upsert_seen(member, "client", member.title())
    group = await staff.ok("conversation:open", {"memberIds": members, "title": "wave"})
    await staff.ok("conversation:join", {"conversationId": group["id"]})
    servers = [one, two]
    clients = await asyncio.gather(*(servers[index % 2].client(member) for index, member in enumerate(members)),
                                   *(servers[index % 2].client(member) for index, member in enumerate(members)))
    for _ in members:
        await staff.expect("presence:changed", lambda data: data["status"] == "online")
    await staff.absent("presence:changed", within=0.3)  # a user's second socket announces nothing
    joined = await staff.ok("conversation:join", {"conversationId": group["id"]})
    assert joined["presence"] == {**dict.fromkeys(members, "online"), "staff": "online"}
    await asyncio.gather(*(client.disconnect() for client in clients))
    offline = {(await staff.expect("presence:changed", lambda data: data["status"] == "offline"))["userId"]
               for _ in members}
    assert offline == set(members)
    await staff.absent("presence:changed", within=0.3)
