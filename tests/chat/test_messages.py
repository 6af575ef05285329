"""message:send / edit / delete / react / history: seqs, idempotency, the edit window, catch-up."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from clock import utcnow
from rest.app_keys import MONGO_DB
from tests.chat.helpers import direct, rid, send
from tests.conftest import RunningServer, StartServer


async def test_send_delivers_to_the_other_member_and_moves_markers(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "Hello Bob")
    assert message["seq"] == 1 and message["senderId"] == "alice" and message["text"] == "Hello Bob"
    assert message["attachments"] == [] and message["reactions"] == {} and message["deleted"] is False
    assert message["editedAt"] is None and message["replyToId"] is None and message["createdAt"].endswith("Z")
    assert await bob.expect("message:created") == message
    await alice.absent("message:created", within=0.2)  # the sending socket has the ack
    listed = await alice.ok("conversation:list", {})
    assert listed["items"][0]["unreadCount"] == 0 and listed["items"][0]["lastSeq"] == 1
    assert (await bob.ok("conversation:list", {}))["items"][0]["unreadCount"] == 1


async def test_send_is_idempotent_per_sender(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    payload = {"conversationId": conversation["id"], "text": "once", "requestId": "same"}
    first = await alice.ok("message:send", payload)
    again = await alice.ok("message:send", payload)
    assert again == first
    await alice.error("message:send", {**payload, "text": "changed"}, code="conflict")  # CONTRACT §1
    await bob.expect("message:created")
    await bob.absent("message:created", within=0.3)
    other = await bob.ok("message:send", payload)  # another sender may reuse the same requestId
    assert other["id"] != first["id"] and other["seq"] == 2
    stored = await server.app[MONGO_DB]["chat_messages"].count_documents({})  # type: ignore[index]
    assert stored == 2


async def test_concurrent_sends_get_unique_increasing_seqs(server: RunningServer) -> None:
    staff = await server.client("t1", "therapist")
    clients = [staff, await server.client("c1"), await server.client("c2"), await server.client("c1")]
    conversation = await staff.ok("conversation:open", {"memberIds": ["c1", "c2"]})
    acks = await asyncio.gather(*(client.ok("message:send", {"conversationId": conversation["id"],
                                                             "text": f"m{i}", "requestId": f"c{i}"})
                                  for i, client in enumerate((clients * 13)[:50])))
    seqs = sorted(ack["seq"] for ack in acks)
    assert seqs == list(range(1, 51)) and len({ack["id"] for ack in acks}) == 50
    history = await staff.ok("message:history", {"conversationId": conversation["id"], "limit": 100})
    assert [m["seq"] for m in history["items"]] == list(range(1, 51)) and history["hasMore"] is False


async def test_invalid_sends_change_nothing(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    cid = conversation["id"]
    for payload in ({"conversationId": cid, "requestId": rid()},
                    {"conversationId": cid, "text": "   ", "requestId": rid()},
                    {"conversationId": cid, "text": "x" * 4001, "requestId": rid()},
                    {"conversationId": cid, "text": "hi"},
                    {"conversationId": cid, "text": "hi", "requestId": "x" * 65},
                    {"conversationId": cid, "text": "hi", "requestId": rid(), "replyToId": "nope"},
                    {"conversationId": cid, "text": "hi", "requestId": rid(), "attachmentIds": ["nope"]},
                    {"conversationId": cid, "text": 5, "requestId": rid()}):
        await alice.error("message:send", payload, code="invalid_payload")
    assert (await send(alice, cid, "x" * 4000))["seq"] == 1
    assert await server.app[MONGO_DB]["chat_messages"].count_documents({}) == 1  # type: ignore[index]


async def test_reply_must_be_in_the_same_conversation(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    carol = await server.client("carol", "therapist")
    elsewhere = await carol.ok("conversation:open", {"memberIds": ["alice"]})
    other = await send(carol, elsewhere["id"], "elsewhere")
    first = await send(bob, conversation["id"], "question")
    reply = await send(alice, conversation["id"], "answer", replyToId=first["id"])
    assert reply["replyToId"] == first["id"]
    await alice.error("message:send", {"conversationId": conversation["id"], "text": "x", "requestId": rid(),
                                       "replyToId": other["id"]}, code="invalid_payload")


async def test_edit_by_sender_within_window(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "helo")
    await bob.expect("message:created")
    edited = await alice.ok("message:edit", {"messageId": message["id"], "text": "hello"})
    assert edited["text"] == "hello" and edited["editedAt"] is not None and edited["seq"] == message["seq"]
    assert await bob.expect("message:updated") == edited
    await bob.error("message:edit", {"messageId": message["id"], "text": "hacked"}, code="forbidden")
    await alice.error("message:edit", {"messageId": message["id"], "text": " "}, code="invalid_payload")
    history = await bob.ok("message:history", {"conversationId": conversation["id"]})
    assert history["items"][0]["text"] == "hello"


async def test_edit_after_the_window_is_refused(start_server: StartServer) -> None:
    server = await start_server(chat_edit_window_minutes=1)
    alice, _bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "old")
    doc = await server.app[MONGO_DB]["chat_messages"].find_one({"_id": message["id"]})  # type: ignore[index]
    await server.app[MONGO_DB]["chat_messages"].update_one(  # type: ignore[index]
        {"_id": message["id"]}, {"$set": {"createdAt": doc["createdAt"] - timedelta(minutes=2)}})
    await alice.error("message:edit", {"messageId": message["id"], "text": "new"}, code="precondition_failed")
    fresh = await send(alice, conversation["id"], "fresh")
    assert (await alice.ok("message:edit", {"messageId": fresh["id"], "text": "fresher"}))["text"] == "fresher"
    closed = await start_server(chat_edit_window_minutes=0)
    carol, _dave, other = await direct(closed, "carol", "client", "dave", "therapist")
    sent = await send(carol, other["id"], "now")
    await asyncio.sleep(0.01)
    await carol.error("message:edit", {"messageId": sent["id"], "text": "later"}, code="precondition_failed")


async def test_delete_keeps_id_and_seq_and_wipes_content(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "regret")
    await bob.ok("message:react", {"messageId": message["id"], "emoji": "👍"})
    await bob.error("message:delete", {"messageId": message["id"]}, code="forbidden")
    assert await alice.ok("message:delete", {"messageId": message["id"]}) == {"messageId": message["id"]}
    assert await bob.expect("message:deleted") == {"conversationId": conversation["id"], "messageId": message["id"]}
    item = (await bob.ok("message:history", {"conversationId": conversation["id"]}))["items"][0]
    assert item["id"] == message["id"] and item["seq"] == 1 and item["deleted"] is True
    assert item["text"] == "" and item["reactions"] == {}
    raw = await server.app[MONGO_DB]["chat_messages"].find_one({"_id": message["id"]})  # type: ignore[index]
    assert raw["text"] is None and raw["tokens"] == [] and raw["history"] == []
    assert await alice.ok("message:delete", {"messageId": message["id"]}) == {"messageId": message["id"]}
    await alice.error("message:edit", {"messageId": message["id"], "text": "back"}, code="precondition_failed")
    await bob.error("message:react", {"messageId": message["id"], "emoji": "👍"}, code="precondition_failed")


async def test_admin_may_delete_any_message(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    admin = await server.client("root", "admin")
    message = await send(alice, conversation["id"], "abusive")
    assert await admin.ok("message:delete", {"messageId": message["id"]}) == {"messageId": message["id"]}
    assert (await bob.expect("message:deleted"))["messageId"] == message["id"]
    await admin.error("message:history", {"conversationId": conversation["id"]}, code="not_found")


async def test_reactions_toggle_per_user_and_emoji(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "great news")
    mid = message["id"]
    assert await bob.ok("message:react", {"messageId": mid, "emoji": "🎉"}) == {
        "messageId": mid, "reactions": {"🎉": ["bob"]}}
    await alice.ok("message:react", {"messageId": mid, "emoji": "🎉"})
    both = await alice.ok("message:react", {"messageId": mid, "emoji": "👍🏽"})
    assert both["reactions"] == {"🎉": ["bob", "alice"], "👍🏽": ["alice"]}
    event = await bob.expect("message:reactions", lambda e: "👍🏽" in e["reactions"])
    assert event["messageId"] == mid and event["conversationId"] == conversation["id"]
    off = await bob.ok("message:react", {"messageId": mid, "emoji": "🎉"})
    assert off["reactions"] == {"🎉": ["alice"], "👍🏽": ["alice"]}
    for emoji in ("👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️"):
        await bob.ok("message:react", {"messageId": mid, "emoji": emoji})
    for bad in ("hello", "a", ":)", "👍 x", "👍\n", "$", "."):
        await bob.error("message:react", {"messageId": mid, "emoji": bad}, code="invalid_payload")
    toggles = await asyncio.gather(*(bob.ok("message:react", {"messageId": mid, "emoji": "🔥"}) for _ in range(4)))
    assert all(set(toggle["reactions"].get("🔥", [])) <= {"bob"} for toggle in toggles)  # only the toggler's
    assert any("bob" in toggle["reactions"].get("🔥", []) for toggle in toggles)  # it was on at some point
    final = (await bob.ok("message:history", {"conversationId": conversation["id"]}))["items"][0]["reactions"]
    assert "🔥" not in final


async def test_history_pages_by_seq(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    cid = conversation["id"]
    for i in range(1, 8):
        await send(alice, cid, f"m{i}")
    latest = await alice.ok("message:history", {"conversationId": cid, "limit": 3})
    assert [m["seq"] for m in latest["items"]] == [5, 6, 7] and latest["hasMore"] is True
    older = await alice.ok("message:history", {"conversationId": cid, "limit": 3, "beforeSeq": 5})
    assert [m["seq"] for m in older["items"]] == [2, 3, 4] and older["hasMore"] is True
    oldest = await alice.ok("message:history", {"conversationId": cid, "limit": 3, "beforeSeq": 2})
    assert [m["seq"] for m in oldest["items"]] == [1] and oldest["hasMore"] is False
    after = await alice.ok("message:history", {"conversationId": cid, "limit": 4, "afterSeq": 2})
    assert [m["seq"] for m in after["items"]] == [3, 4, 5, 6] and after["hasMore"] is True
    tail = await alice.ok("message:history", {"conversationId": cid, "afterSeq": 6})
    assert [m["text"] for m in tail["items"]] == ["m7"] and tail["hasMore"] is False
    empty = await alice.ok("message:history", {"conversationId": cid, "afterSeq": 7})
    assert empty == {"items": [], "throughSeq": None, "hasMore": False}
    await alice.error("message:history", {"conversationId": cid, "limit": 101}, code="invalid_payload")


async def test_catch_up_after_reconnect_gets_all_100_in_order(start_server: StartServer) -> None:
    server = await start_server(rate_limit_burst=200)
    alice, bob, conversation = await direct(server)
    cid = conversation["id"]
    first = await send(alice, cid, "before")
    seen = (await bob.expect("message:created"))["seq"]
    assert seen == first["seq"]
    await bob.disconnect()
    for i in range(100):
        await send(alice, cid, f"missed {i}")
    bob = await server.client("bob", "therapist")
    await bob.ok("conversation:join", {"conversationId": cid})
    caught = await bob.ok("message:history", {"conversationId": cid, "afterSeq": seen, "limit": 100})
    assert [m["text"] for m in caught["items"]] == [f"missed {i}" for i in range(100)]
    assert [m["seq"] for m in caught["items"]] == list(range(2, 102)) and caught["hasMore"] is False


async def test_catch_up_never_steps_over_a_message_still_being_written(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    cid = conversation["id"]
    first = await send(alice, cid, "one")
    await server.chat.deps.seqs.next_seq(cid)  # a send in flight on another process
    third = await send(alice, cid, "three")
    assert (first["seq"], third["seq"]) == (1, 3)
    page = await alice.ok("message:history", {"conversationId": cid, "afterSeq": 0})
    assert [m["seq"] for m in page["items"]] == [1] and page["hasMore"] is True
    # The in-flight send failed for good: once the gap has settled, catch-up steps over it.
    await server.app[MONGO_DB]["chat_messages"].update_one(  # type: ignore[index]
        {"_id": third["id"]}, {"$set": {"createdAt": utcnow() - timedelta(seconds=10)}})
    page = await alice.ok("message:history", {"conversationId": cid, "afterSeq": 1})
    assert [m["seq"] for m in page["items"]] == [3] and page["hasMore"] is False
