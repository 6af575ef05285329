"""The send hot path: group commit, seq counters behind the store, backpressure, activity written behind."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any

from clock import utcnow
from rest.app_keys import MONGO_DB
from stores.chat.messages import message_id
from tests.chat.helpers import direct, rid, send
from tests.conftest import RunningServer


def _messages(server: RunningServer) -> Any:
    return server.app[MONGO_DB]["chat_messages"]  # type: ignore[index]


async def test_concurrent_sends_are_written_in_fewer_database_commands(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    inserts = server.chat.deps.messages._inserts  # type: ignore[attr-defined]
    batches: list[int] = []
    write = inserts._write

    async def counting(batch: list[Any]) -> None:
        batches.append(len(batch))
        await write(batch)

    inserts._write = counting
    sent = await asyncio.gather(*(send(member, conversation["id"], f"m{i}")
                                  for i in range(15) for member in (alice, bob)))
    assert sorted(m["seq"] for m in sent) == list(range(1, 31))
    assert sum(batches) == 30 and len(batches) < 30  # sends that arrive together share a commit
    received = [await bob.expect("message:created") for _ in range(15)]
    assert {m["id"] for m in received} == {m["id"] for m in sent if m["senderId"] == "alice"}
    assert await _messages(server).count_documents({"conversationId": conversation["id"]}) == 30


async def test_batches_start_an_interval_apart_and_a_send_after_a_quiet_spell_is_written_at_once(
        server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    inserts = server.chat.deps.messages._inserts  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    inserts._min_interval = interval = 0.05
    starts: list[tuple[float, int]] = []
    write = inserts._write

    async def timed(batch: list[Any]) -> None:
        starts.append((loop.time(), len(batch)))
        await write(batch)

    inserts._write = timed

    async def staggered(i: int) -> dict[str, Any]:
        await asyncio.sleep(i * 0.01)
        return await send(alice, conversation["id"], f"s{i}")

    sent = await asyncio.gather(*(staggered(i) for i in range(12)))  # one send every 10 ms for 120 ms
    assert [m["seq"] for m in sent] == list(range(1, 13))
    assert sum(size for _, size in starts) == 12 and len(starts) <= 5  # several sends per command
    assert all(later - earlier >= interval * 0.99 for (earlier, _), (later, _) in itertools.pairwise(starts))
    assert [(await bob.expect("message:created"))["seq"] for _ in range(12)] == list(range(1, 13))
    await asyncio.sleep(interval * 2)  # quiet: the next send does not wait for an interval
    asked = loop.time()
    await send(alice, conversation["id"], "after the quiet spell")
    assert starts[-1][1] == 1 and starts[-1][0] - asked < interval / 2


async def test_a_counter_behind_the_store_skips_to_a_free_seq(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    cid = conversation["id"]
    await send(alice, cid, "one")
    # Another process stored seq 2 and 3 (this process's counter does not know).
    for seq in (2, 3):
        await _messages(server).insert_one({"_id": f"elsewhere{seq}", "conversationId": cid, "seq": seq,
                                            "senderId": "bob", "attachments": [], "reactionKeys": [],
                                            "createdAt": utcnow(), "editedAt": None, "deleted": False,
                                            "text": None, "tokens": []})
    fourth = await send(alice, cid, "four")
    assert fourth["seq"] == 4
    history = await bob.ok("message:history", {"conversationId": cid, "afterSeq": 0})
    assert [m["seq"] for m in history["items"]] == [1, 2, 3, 4]


async def test_a_backlogged_database_refuses_new_sends_and_stores_nothing(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    inserts = server.chat.deps.messages._inserts  # type: ignore[attr-defined]
    inserts._max_queued = 0
    payload = {"conversationId": conversation["id"], "text": "later", "requestId": "r-busy"}
    error = await alice.error("message:send", payload, code="unavailable")
    assert "later" not in error["message"]
    await bob.absent("message:created", within=0.3)
    assert await _messages(server).count_documents({"conversationId": conversation["id"]}) == 0
    inserts._max_queued = 1024
    stored = await alice.ok("message:send", payload)  # the client's retry with the same requestId
    assert stored["seq"] == 1 and stored["text"] == "later"


async def test_a_repeat_this_process_forgot_returns_the_first_message(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    payload = {"conversationId": conversation["id"], "text": "once", "requestId": "r-forgot"}
    first = await alice.ok("message:send", payload)
    assert first["id"] == message_id("alice", "r-forgot")
    server.chat.deps.messages._recent.clear()  # type: ignore[attr-defined]
    assert await alice.ok("message:send", payload) == first
    await alice.error("message:send", {**payload, "text": "again"}, code="conflict")
    assert await _messages(server).count_documents({"conversationId": conversation["id"]}) == 1


async def test_activity_is_written_behind_and_this_process_never_sees_it_lag(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    cid = conversation["id"]
    stored_activity = server.app[MONGO_DB]["chat_activity"]  # type: ignore[index]
    activity = server.chat.deps.activity
    activity.interval = 30.0  # nothing is flushed by the timer during this test
    for text in ("one", "two"):
        await send(alice, cid, text)
    assert await stored_activity.find_one({"_id": cid}) is None  # not written yet
    joined = await bob.ok("conversation:join", {"conversationId": cid})
    assert joined["conversation"]["lastSeq"] == 2  # ... but this process knows
    latest = await bob.ok("message:history", {"conversationId": cid, "limit": 1})
    assert [m["text"] for m in latest["items"]] == ["two"] and latest["hasMore"] is True
    listed = await bob.ok("conversation:list", {})
    assert listed["items"][0]["lastSeq"] == 2 and listed["items"][0]["unreadCount"] == 2
    await activity.flush()  # what the timer (or shutdown) does
    stored = await stored_activity.find_one({"_id": cid})
    assert stored["lastSeq"] == 2 and stored["lastActivityAt"].isoformat()[:19] <= utcnow().isoformat()[:19]
    # Alice sent both, so she has read up to her own last message.
    assert (await alice.ok("conversation:list", {}))["items"][0]["unreadCount"] == 0


async def test_sending_reads_the_senders_pending_message_notification(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server, join=False)
    cid = conversation["id"]
    await alice.ok("conversation:join", {"conversationId": cid})
    await send(alice, cid, "are you there?")  # Bob is not viewing the conversation: he is notified
    await server.shared.bus.drain()
    notifications = server.app[MONGO_DB]["notifications"]  # type: ignore[index]
    pending = {"userId": "bob", "data.conversationId": cid}
    assert (await notifications.find_one(pending))["readAt"] is None
    await bob.ok("message:send", {"conversationId": cid, "text": "yes", "requestId": rid()})  # replying reads it
    await server.chat.deps.activity.flush()
    await server.shared.bus.drain()
    assert (await notifications.find_one(pending))["readAt"] is not None


async def test_conversations_stored_in_the_legacy_layout_are_migrated(server: RunningServer) -> None:
    from datetime import timedelta

    from stores.chat.conversations import pair_key
    from stores.chat.migrations import migrate_chat

    db = server.app[MONGO_DB]  # type: ignore[index]
    conversations = db["chat_conversations"]
    await conversations.drop_index("key_1")
    for name in ("pairKey", "requestKey"):
        await conversations.create_index(name, unique=True)
    await db["chat_messages"].create_index([("senderId", 1), ("requestId", 1)], unique=True)
    at = utcnow() - timedelta(minutes=5)
    await conversations.insert_one({"_id": "legacy1", "kind": "client_therapist", "memberIds": ["alice", "bob"],
                                    "title": None, "createdBy": "alice", "createdAt": at, "lastActivityAt": at,
                                    "lastSeq": 7, "pairKey": pair_key("alice", "bob"),
                                    "requestKey": "pair:" + pair_key("alice", "bob")})
    await migrate_chat(db)
    await server.chat.deps.conversations.ensure_indexes()
    assert "pairKey_1" not in await conversations.index_information()
    assert "senderId_1_requestId_1" not in await db["chat_messages"].index_information()
    alice, _bob, conversation = await direct(server)  # opening the pair finds the legacy conversation
    assert conversation["id"] == "legacy1" and conversation["lastSeq"] == 7
    assert (await send(alice, "legacy1", "after the move"))["seq"] == 8
