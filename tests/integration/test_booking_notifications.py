"""Booking feeds notifications end to end: each change tells the other party, never the note."""
from __future__ import annotations

from tests.booking.helpers import later, therapist
from tests.conftest import RunningServer


async def test_booking_changes_notify_the_other_party(server: RunningServer) -> None:
    therapist_booking = await therapist(server, "t1")
    therapist_inbox = await server.client("t1", "therapist", namespace="/notifications")
    client_booking = await server.client("c1", "client", namespace="/booking")
    client_inbox = await server.client("c1", "client", namespace="/notifications")
    start = later(48)
    created = await client_booking.ok("booking:create", {"therapistId": "t1", "start": start.isoformat(),
                                                         "requestId": "r1", "note": "panic attacks at work"})
    requested = await therapist_inbox.expect("notification:created")
    assert requested["category"] == "booking" and requested["data"]["bookingId"] == created["id"]
    assert "panic" not in str(requested)
    await therapist_booking.ok("booking:confirm", {"bookingId": created["id"]})
    confirmed = await client_inbox.expect("notification:created")
    assert confirmed["category"] == "booking" and confirmed["data"]["bookingId"] == created["id"]
    await client_booking.ok("booking:cancel", {"bookingId": created["id"], "reason": "feeling worse"})
    cancelled = await therapist_inbox.expect("notification:created")
    assert "worse" not in str(cancelled) and cancelled["id"] != requested["id"]
    await client_inbox.absent("notification:created", within=0.3)
