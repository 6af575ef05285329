"""Domain events from chat and booking, published on the real bus of a running server, notify the right people."""
from __future__ import annotations

from typing import Any

from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer

NS = "/notifications"
SECRET = "I feel hopeless about my therapy"


def message_event(seq: int, conversation: str = "c1", absent: list[str] | None = None) -> dict[str, Any]:
    """The payload chat publishes with `message.created`."""
    return {
        "message": {"id": f"m{seq}", "conversationId": conversation, "seq": seq, "senderId": "t1", "text": SECRET},
        "conversation_id": conversation,
        "sender": {"id": "t1", "role": "therapist", "name": "Dr Who"},
        "absent_member_ids": ["c9"] if absent is None else absent,
    }


async def stored(server: RunningServer, user_id: str) -> list[dict[str, Any]]:
    """The user's notification documents, oldest first."""
    cursor = server.app[MONGO_DB]["notifications"].find({"userId": user_id}).sort("seq", 1)
    return [doc async for doc in cursor]


async def test_a_burst_of_messages_makes_one_notification_until_read(server: RunningServer) -> None:
    bus = server.services.bus
    for seq in (1, 2, 3):
        await bus.publish("message.created", **message_event(seq))
        await bus.drain()
    docs = await stored(server, "c9")
    assert len(docs) == 1
    assert docs[0]["title"] == "New message from Dr Who" and docs[0]["category"] == "message"
    assert SECRET not in repr(docs[0]) and docs[0]["data"] == {"conversationId": "c1", "messageId": "m1", "seq": 1}
    await bus.publish("message.created", **message_event(1, conversation="c2"))  # another conversation
    await bus.drain()
    assert len(await stored(server, "c9")) == 2
    await bus.publish("conversation.read", conversation_id="c1", user_id="c9", seq=3)
    await bus.drain()
    client = await server.client("c9", namespace=NS)
    assert await client.ok("notification:unread-count") == {"unreadCount": 1}
    await bus.publish("message.created", **message_event(4))  # after reading, a new burst notifies again
    await bus.drain()
    assert [doc["data"]["conversationId"] for doc in await stored(server, "c9")] == ["c1", "c2", "c1"]
    pushed = await client.expect("notification:created")
    assert pushed["data"]["messageId"] == "m4"


async def test_reading_the_notification_reopens_the_conversation_for_a_new_one(server: RunningServer) -> None:
    bus = server.services.bus
    await bus.publish("message.created", **message_event(1))
    await bus.drain()
    client = await server.client("c9", namespace=NS)
    first = (await client.ok("notification:list", {}))["items"][0]
    await client.ok("notification:read", {"ids": [first["id"]]})
    await bus.publish("message.created", **message_event(2))
    await bus.drain()
    assert len(await stored(server, "c9")) == 2


async def test_present_members_and_the_sender_are_not_notified(server: RunningServer) -> None:
    event = message_event(1, absent=["t1"])
    await server.services.bus.publish("message.created", **event)
    await server.services.bus.drain()
    assert await stored(server, "t1") == [] and await stored(server, "c9") == []


def booking(status: str, start: str = "2026-11-24T10:00:00Z") -> dict[str, Any]:
    """A Booking dict as booking publishes it (with a reason that must never leak)."""
    return {"id": "b1", "clientId": "c1", "therapistId": "t1", "start": start, "end": "2026-11-24T10:50:00Z",
            "status": status, "reason": "panic attacks", "notes": "private"}


async def test_booking_events_notify_the_other_party(server: RunningServer) -> None:
    therapist = await server.client("t1", "therapist", namespace=NS)
    bus = server.services.bus
    await bus.publish("booking.requested", booking=booking("requested"), actor_id="c1")
    pushed = await therapist.expect("notification:created")
    assert pushed["title"] == "Session requested" and pushed["body"] == "Tue 24 Nov 2026, 10:00 UTC"
    assert pushed["category"] == "booking" and pushed["data"] == {"bookingId": "b1", "start": "2026-11-24T10:00:00.000Z"}
    for name, state, actor in (("booking.confirmed", booking("confirmed"), "t1"),
                               ("booking.declined", booking("declined"), None),  # the system: the client hears
                               ("booking.rescheduled", booking("confirmed", "2026-11-25T09:00:00Z"), "t1"),
                               ("booking.cancelled", booking("cancelled"), "admin1")):  # an admin: both hear
        await bus.publish(name, booking=state, actor_id=actor)
        await bus.drain()
    client_docs, therapist_docs = await stored(server, "c1"), await stored(server, "t1")
    assert [d["title"] for d in client_docs] == ["Session confirmed", "Session declined", "Session rescheduled",
                                                 "Session cancelled"]
    assert [d["title"] for d in therapist_docs] == ["Session requested", "Session cancelled"]
    assert client_docs[2]["body"] == "Wed 25 Nov 2026, 09:00 UTC"
    assert all("panic" not in repr(d) and "private" not in repr(d) for d in client_docs + therapist_docs)


async def test_a_repeated_booking_event_notifies_once(server: RunningServer) -> None:
    for _ in range(3):
        await server.services.bus.publish("booking.confirmed", booking=booking("confirmed"), actor_id="t1")
    await server.services.bus.drain()
    assert len(await stored(server, "c1")) == 1
