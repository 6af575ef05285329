"""Session outcomes decided by the scheduler loops of two processes, each exactly once."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from handlers.events import BookingChanged
from rest.app_keys import MONGO_DB
from tests.booking.helpers import collect_events
from tests.conftest import RunningServer, StartServer
from tests.meetings.helpers import END, NS, START, booked_meeting, in_room, until

FAST = {"meeting_tick_seconds": 0.05}


async def _two(start_server: StartServer) -> tuple[RunningServer, RunningServer]:
    """Two processes sharing the database and Redis, each running its scheduler loop every 50 ms."""
    return await start_server(redis=True, **FAST), await start_server(redis=True, **FAST)


async def _status(server: RunningServer, booking_id: str) -> str:
    doc = await server.app[MONGO_DB]["bookings"].find_one({"_id": booking_id})
    return str(doc["status"])


def _changes(events: list[BookingChanged], change: str) -> list[BookingChanged]:
    return [e for e in events if e.change == change]


async def test_client_absent_is_a_no_show_exactly_once(start_server: StartServer) -> None:
    one, two = await _two(start_server)
    session = await booked_meeting(one, two)
    events = collect_events(one)
    seen_two = collect_events(two)
    session.move(START)
    h = await one.client("t1", "therapist", NS)
    await h.ok("meeting:join", {"meetingId": session.meeting_id})
    session.move(START + timedelta(minutes=15) - timedelta(milliseconds=1))
    await asyncio.sleep(0.4)
    assert await _status(one, session.booking["id"]) == "confirmed"
    session.move(START + timedelta(minutes=15))
    await until(lambda: _is(one, session.booking["id"], "no_show"), 10)
    await asyncio.sleep(0.5)  # both loops keep running: nothing happens twice
    assert len(_changes(events + seen_two, "no_show")) == 1
    meeting = await one.app[MONGO_DB]["meetings"].find_one({"_id": session.meeting_id})
    assert meeting["status"] == "ended" and meeting["outcome"] == "no_show" and meeting["outcomeApplied"]
    assert "dueAt" not in meeting
    await h.expect("meeting:ended", lambda d: d["outcome"] == "no_show")
    notes = one.app[MONGO_DB]["notifications"]
    assert await notes.count_documents({"title": "Session missed"}) == 2


async def _is(server: RunningServer, booking_id: str, status: str) -> bool:
    return await _status(server, booking_id) == status


async def test_both_in_until_the_window_closes_completes_exactly_once(start_server: StartServer) -> None:
    one, two = await _two(start_server)
    session = await booked_meeting(one, two)
    events = collect_events(one)
    seen_two = collect_events(two)
    _h, g = await in_room(one, session, guest_server=two)
    for rtt, loss, rate in ((40, 0.0, 900), (60, 0.02, 1100), (50, 0.01, 1000)):
        await g.ok("meeting:stats", {"meetingId": session.meeting_id,
                                     "stats": {"rttMs": rtt, "packetLoss": loss, "bitrateKbps": rate}})
    await g.error("meeting:stats", {"meetingId": session.meeting_id, "stats": {"packetLoss": 3}}, "invalid_payload")
    session.move(START + timedelta(minutes=30))
    await asyncio.sleep(0.3)
    assert await _status(one, session.booking["id"]) == "confirmed"
    session.move(END + timedelta(minutes=15, seconds=1))
    await until(lambda: _is(one, session.booking["id"], "completed"), 10)
    await asyncio.sleep(0.5)
    assert len(_changes(events + seen_two, "completed")) == 1
    ended = await g.expect("meeting:ended")
    assert ended["outcome"] == "completed" and ended["durationSeconds"] == (END - START).seconds + 15 * 60 + 1
    [quality] = ended["quality"]
    assert quality == {"userId": "c1", "samples": 3, "medianRttMs": 50.0, "worstPacketLoss": 0.02,
                       "medianBitrateKbps": 1000.0}
    booking = await (await one.client("c1", "client", "/booking")).ok("booking:get",
                                                                       {"bookingId": session.booking["id"]})
    assert booking["status"] == "completed" and booking["meetingId"] == session.meeting_id


async def test_host_absent_cancels_as_the_therapist_with_a_full_refund(start_server: StartServer) -> None:
    one, two = await _two(start_server)
    session = await booked_meeting(one, two)
    events = collect_events(one)
    seen_two = collect_events(two)
    session.move(START)
    g = await two.client("c1", "client", NS)
    assert (await g.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "waiting"
    session.move(START + timedelta(minutes=15))
    await until(lambda: _is(one, session.booking["id"], "cancelled"), 10)
    await asyncio.sleep(0.5)
    [cancel] = _changes(events + seen_two, "cancelled")
    assert cancel.actor_id is None
    assert cancel.booking.cancelled_by == "therapist" and cancel.booking.refund == {"percent": 100, "amount": None}
    meeting = await one.app[MONGO_DB]["meetings"].find_one({"_id": session.meeting_id})
    assert meeting["status"] == "ended" and meeting["outcome"] == "host_absent"
    await g.expect("meeting:ended")


async def test_host_ending_with_both_in_completes_the_booking(server: RunningServer) -> None:
    session = await booked_meeting(server)
    events = collect_events(server)
    h, _g = await in_room(server, session)
    await h.ok("meeting:end", {"meetingId": session.meeting_id})
    await until(lambda: _is(server, session.booking["id"], "completed"), 5)
    await server.shared.bus.drain()
    assert [e.change for e in events] == ["completed"]
    await h.error("meeting:end", {"meetingId": session.meeting_id}, "precondition_failed")


async def test_a_seat_is_given_up_after_the_reconnect_window(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    await g.disconnect()

    async def away() -> bool:
        doc = await server.app[MONGO_DB]["meeting_seats"].find_one({"userId": "c1"})
        return doc.get("awaySince") is not None

    await until(away, 5)
    session.move(START + timedelta(seconds=20))
    await server.meetings.closer.give_up_seats()
    await h.absent("participant:left", within=0.2)
    session.move(START + timedelta(seconds=21))
    await server.meetings.closer.give_up_seats()
    await h.expect("participant:left", lambda d: d["userId"] == "c1")
    g2 = await server.client("c1", "client", NS)
    assert (await g2.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "waiting"


async def test_cancelling_or_rescheduling_the_booking_follows_into_the_meeting(server: RunningServer) -> None:
    session = await booked_meeting(server)
    t = await server.client("t1", "therapist", NS)
    c = await server.client("c1", "client", "/booking")
    later = START + timedelta(hours=3)
    await c.ok("booking:reschedule", {"bookingId": session.booking["id"], "start": later.isoformat()})
    moved = await t.expect("meeting:updated")
    assert moved["start"] == "2030-03-04T13:00:00.000Z" and moved["id"] == session.meeting_id
    await c.ok("booking:cancel", {"bookingId": session.booking["id"]})
    cancelled = await t.expect("meeting:updated", lambda d: d["status"] == "cancelled")
    assert cancelled["id"] == session.meeting_id
    session.move(later)
    await t.error("meeting:join", {"meetingId": session.meeting_id}, "precondition_failed")
