"""Chat feeds notifications end to end: an absent member is told (without the text), once per burst."""
from __future__ import annotations

from tests.chat.helpers import direct, send
from tests.conftest import RunningServer


async def test_absent_member_gets_one_neutral_notification_per_burst(server: RunningServer) -> None:
    alice, bob_chat, conversation = await direct(server, "alice", "client", "bob", "therapist", join=False)
    await alice.ok("conversation:join", {"conversationId": conversation["id"]})
    bob_inbox = await server.client("bob", "therapist", namespace="/notifications")
    for text in ("I feel anxious about tomorrow", "are you there?", "please answer"):
        await send(alice, conversation["id"], text)
    created = await bob_inbox.expect("notification:created")
    assert created["category"] == "message" and created["title"] == "New message from Alice"
    assert "anxious" not in str(created) and "answer" not in str(created)
    assert created["data"]["conversationId"] == conversation["id"]
    await bob_inbox.absent("notification:created", within=0.5)
    listed = await bob_inbox.ok("notification:list", {})
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    # Bob reads the conversation: the notification is read, and the next message notifies again.
    await bob_chat.ok("message:read", {"conversationId": conversation["id"], "seq": 3})
    await server.shared.bus.drain()
    assert (await bob_inbox.ok("notification:unread-count", {}))["unreadCount"] == 0
    await send(alice, conversation["id"], "one more")
    again = await bob_inbox.expect("notification:created")
    assert again["id"] != created["id"]


async def test_member_watching_the_conversation_is_not_notified(server: RunningServer) -> None:
    alice, _bob_chat, conversation = await direct(server, "alice", "client", "bob", "therapist", join=True)
    bob_inbox = await server.client("bob", "therapist", namespace="/notifications")
    await send(alice, conversation["id"], "hello")
    await server.shared.bus.drain()
    await bob_inbox.absent("notification:created", within=0.3)
    assert (await bob_inbox.ok("notification:unread-count", {}))["unreadCount"] == 0
