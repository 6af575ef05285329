"""CONTRACT §1 idempotency on every creating request: a repeat returns the first result and changes nothing;
the same requestId with a different payload is refused with `conflict` (details.reason "requestId reused")."""
from __future__ import annotations

import asyncio

from rest.app_keys import MONGO_DB
from tests.booking.helpers import NS as BOOKING
from tests.booking.helpers import later, therapist
from tests.chat.helpers import direct, send
from tests.conftest import RunningServer

REUSED = {"reason": "requestId reused"}


async def test_message_send_repeat_and_reuse(server: RunningServer) -> None:
    alice, _, conversation = await direct(server)
    first = await alice.ok("message:send", {"conversationId": conversation["id"], "text": "hi", "requestId": "m1"})
    again = await alice.ok("message:send", {"conversationId": conversation["id"], "text": "hi", "requestId": "m1"})
    assert again["id"] == first["id"] and again["seq"] == first["seq"]
    error = await alice.error("message:send", {"conversationId": conversation["id"], "text": "other",
                                               "requestId": "m1"}, code="conflict")
    assert error["details"] == REUSED
    edited = await alice.ok("message:edit", {"messageId": first["id"], "text": "hi (edited)"})
    assert edited["text"] == "hi (edited)"
    retried = await alice.ok("message:send", {"conversationId": conversation["id"], "text": "hi", "requestId": "m1"})
    assert retried["id"] == first["id"]  # a late retry of the original send after an edit is still that send
    history = await alice.ok("message:history", {"conversationId": conversation["id"]})
    assert len(history["items"]) == 1


async def test_booking_create_reuse_is_a_conflict_and_changes_nothing(server: RunningServer) -> None:
    await therapist(server)
    client = await server.client("c1", "client", BOOKING)
    start = later(48)
    first = await client.ok("booking:create", {"therapistId": "t1", "start": start.isoformat(), "requestId": "b1"})
    again = await client.ok("booking:create", {"therapistId": "t1", "start": start.isoformat(), "requestId": "b1"})
    assert again["id"] == first["id"]
    other = later(72).isoformat()
    error = await client.error("booking:create", {"therapistId": "t1", "start": other, "requestId": "b1"},
                               code="conflict")
    assert error["details"] == REUSED
    assert await server.app[MONGO_DB]["bookings"].count_documents({"clientId": "c1"}) == 1


async def test_a_refused_request_frees_its_request_id(server: RunningServer) -> None:
    await therapist(server)
    client = await server.client("c1", "client", BOOKING)
    await client.error("booking:create", {"therapistId": "nobody", "start": later(48).isoformat(),
                                          "requestId": "b2"})
    booked = await client.ok("booking:create", {"therapistId": "t1", "start": later(48).isoformat(),
                                                "requestId": "b2"})
    assert booked["status"] == "pending"


async def test_report_is_replayed_and_reuse_refused(server: RunningServer) -> None:
    alice, _, conversation = await direct(server)
    message = await send(alice, conversation["id"])
    body = {"messageId": message["id"], "reason": "spam", "requestId": "rep1"}
    first, again = await asyncio.gather(alice.call("message:report", body), alice.call("message:report", body))
    replies = sorted([first, again], key=lambda reply: reply["ok"], reverse=True)
    assert replies[0]["ok"] is True
    assert replies[1]["ok"] is True or replies[1]["error"]["details"] == {"reason": "in progress"}
    repeated = await alice.ok("message:report", body)
    assert repeated == replies[0]["data"]
    error = await alice.error("message:report", {**body, "reason": "abuse"}, code="conflict")
    assert error["details"] == REUSED


async def test_broadcast_with_request_id_notifies_once(server: RunningServer) -> None:
    admin = await server.client("a1", "admin", namespace="/notifications")
    client = await server.client("c1", "client", namespace="/notifications")
    body = {"role": "client", "title": "Maintenance", "body": "Tonight", "requestId": "bc1"}
    assert await admin.ok("notification:broadcast", body) == {"count": 1}
    assert await admin.ok("notification:broadcast", body) == {"count": 1}
    items = (await client.ok("notification:list", {}))["items"]
    assert len(items) == 1
    await admin.error("notification:broadcast", {**body, "title": "Other"}, code="conflict")
    assert len((await client.ok("notification:list", {}))["items"]) == 1


async def test_request_ids_are_per_user_and_event(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    mine = await alice.ok("message:send", {"conversationId": conversation["id"], "text": "a", "requestId": "same"})
    theirs = await bob.ok("message:send", {"conversationId": conversation["id"], "text": "b", "requestId": "same"})
    assert mine["id"] != theirs["id"]
    message = await send(alice, conversation["id"])
    report = await alice.ok("message:report", {"messageId": message["id"], "reason": "x", "requestId": "same"})
    assert report["reportId"]
