"""Domain events from chat and booking, published on the real bus of a running server, notify the right people."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from handlers.auth import User
from handlers.events import BookingChanged, ConversationRead, MessageCreated
from rest.app_keys import MONGO_DB
from stores.booking.bookings import BookingRecord
from stores.chat.messages import Message
from tests.conftest import RunningServer

NS = "/notifications"
SECRET = "I feel hopeless about my therapy"


NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def message_event(seq: int, conversation: str = "c1", absent: list[str] | None = None) -> MessageCreated:
    """What chat publishes for a new message."""
    message = Message(id=f"m{seq}", conversation_id=conversation, seq=seq, sender_id="t1", text=SECRET,
                      attachments=(), reply_to_id=None, reactions={}, created_at=NOW, edited_at=None, deleted=False)
    return MessageCreated(message, User("t1", "therapist", "Dr Who"), tuple(["c9"] if absent is None else absent))


async def stored(server: RunningServer, user_id: str) -> list[dict[str, Any]]:
    """The user's notification documents, oldest first."""
    cursor = server.app[MONGO_DB]["notifications"].find({"userId": user_id}).sort("seq", 1)
    return [doc async for doc in cursor]


async def test_a_burst_of_messages_makes_one_notification_until_read(server: RunningServer) -> None:
    bus = server.shared.bus
    for seq in (1, 2, 3):
        await bus.publish(message_event(seq))
        await bus.drain()
    docs = await stored(server, "c9")
    assert len(docs) == 1
    assert docs[0]["title"] == "New message from Dr Who" and docs[0]["category"] == "message"
    assert SECRET not in repr(docs[0]) and docs[0]["data"] == {"conversationId": "c1", "messageId": "m1", "seq": 1}
    await bus.publish(message_event(1, conversation="c2"))  # another conversation
    await bus.drain()
    assert len(await stored(server, "c9")) == 2
    await bus.publish(ConversationRead("c1", "c9", 3))
    await bus.drain()
    client = await server.client("c9", namespace=NS)
    assert await client.ok("notification:unread-count") == {"unreadCount": 1}
    await bus.publish(message_event(4))  # after reading, a new burst notifies again
    await bus.drain()
    assert [doc["data"]["conversationId"] for doc in await stored(server, "c9")] == ["c1", "c2", "c1"]
    pushed = await client.expect("notification:created")
    assert pushed["data"]["messageId"] == "m4"


async def test_reading_the_notification_reopens_the_conversation_for_a_new_one(server: RunningServer) -> None:
    bus = server.shared.bus
    await bus.publish(message_event(1))
    await bus.drain()
    client = await server.client("c9", namespace=NS)
    first = (await client.ok("notification:list", {}))["items"][0]
    await client.ok("notification:read", {"ids": [first["id"]]})
    await bus.publish(message_event(2))
    await bus.drain()
    assert len(await stored(server, "c9")) == 2


async def test_present_members_and_the_sender_are_not_notified(server: RunningServer) -> None:
    event = message_event(1, absent=["t1"])
    await server.shared.bus.publish(event)
    await server.shared.bus.drain()
    assert await stored(server, "t1") == [] and await stored(server, "c9") == []


def booking(status: str, start: str = "2026-11-24T10:00") -> BookingRecord:
    """A booking as booking publishes it (with a reason and a note that must never leak)."""
    begins = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    return BookingRecord(id="b1", client_id="c1", therapist_id="t1", start=begins, end=begins.replace(minute=50),
                         status=status, policy={}, buffer_minutes=10, request_id="r1", note={"private": "note"},
                         cancelled_by=None, reason="panic attacks", refund=None, payment_status="none",
                         meeting_id=None, expires_at=None, created_at=NOW, updated_at=NOW)


async def test_booking_events_notify_the_other_party(server: RunningServer) -> None:
    therapist = await server.client("t1", "therapist", namespace=NS)
    bus = server.shared.bus
    await bus.publish(BookingChanged("requested", booking("pending"), "c1"))
    pushed = await therapist.expect("notification:created")
    assert pushed["title"] == "Session requested" and pushed["body"] == "Tue 24 Nov 2026, 10:00 UTC"
    assert pushed["category"] == "booking"
    assert pushed["data"] == {"bookingId": "b1", "start": "2026-11-24T10:00:00.000Z"}
    for change, state, actor in (("confirmed", booking("confirmed"), "t1"),
                                 ("declined", booking("declined"), None),  # the system: the client hears
                                 ("rescheduled", booking("confirmed", "2026-11-25T09:00"), "t1"),
                                 ("cancelled", booking("cancelled"), "admin1")):  # an admin: both hear
        await bus.publish(BookingChanged(change, state, actor))  # type: ignore[arg-type]
        await bus.drain()
    client_docs, therapist_docs = await stored(server, "c1"), await stored(server, "t1")
    assert [d["title"] for d in client_docs] == ["Session confirmed", "Session declined", "Session rescheduled",
                                                 "Session cancelled"]
    assert [d["title"] for d in therapist_docs] == ["Session requested", "Session cancelled"]
    assert client_docs[2]["body"] == "Wed 25 Nov 2026, 09:00 UTC"
    assert all("panic" not in repr(d) and "private" not in repr(d) for d in client_docs + therapist_docs)


async def test_a_repeated_booking_event_notifies_once(server: RunningServer) -> None:
    for _ in range(3):
        await server.shared.bus.publish(BookingChanged("confirmed", booking("confirmed"), "t1"))
    await server.shared.bus.drain()
    assert len(await stored(server, "c1")) == 1
