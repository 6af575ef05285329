"""Shared setup for meeting tests: a confirmed booking with its meeting, a movable clock, joined peers."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clock import iso
from rest.app_keys import MONGO_DB
from tests.booking.helpers import at, availability, fix_clock
from tests.clients import SioClient
from tests.conftest import RunningServer

NS = "/meetings"
START = at("2030-03-04T10:00")
END = START + timedelta(minutes=50)


@dataclass
class Session:
    """A confirmed booking c1 -> t1 at START and its meeting; `clock[0]` is every server's "now"."""

    booking: dict[str, Any]
    meeting_id: str
    clock: list[datetime]

    def move(self, when: datetime) -> None:
        """Set every server's clock."""
        self.clock[0] = when


async def booked_meeting(server: RunningServer, *others: RunningServer, policy: dict[str, Any] | None = None,
                         client: str = "c1", therapist: str = "t1") -> Session:
    """Therapist with availability, a client's booking at START, confirmed; waits for its meeting."""
    clock = fix_clock(server, *others, now=START - timedelta(days=1))
    t = await server.client(therapist, "therapist", "/booking")
    extra = {"policy": policy} if policy else {}
    await t.ok("availability:set", availability(**extra))
    c = await server.client(client, "client", "/booking")
    booking = await c.ok("booking:create", {"therapistId": therapist, "start": iso(START), "requestId": "r1"})
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    for _ in range(100):
        got = await c.ok("booking:get", {"bookingId": booking["id"]})
        if got["meetingId"]:
            await t.disconnect()
            await c.disconnect()
            return Session(got, got["meetingId"], clock)
        await asyncio.sleep(0.05)
    raise AssertionError("the booking never got its meeting")


async def in_room(server: RunningServer, session: Session, host: str = "t1", guest: str = "c1",
                  guest_server: RunningServer | None = None) -> tuple[SioClient, SioClient]:
    """Host and guest joined, the guest admitted by the host; the clock at the meeting's start."""
    session.move(START)
    h = await server.client(host, "therapist", NS)
    g = await (guest_server or server).client(guest, "client", NS)
    joined = await h.ok("meeting:join", {"meetingId": session.meeting_id})
    assert joined["status"] == "admitted"
    waiting = await g.ok("meeting:join", {"meetingId": session.meeting_id})
    assert waiting["status"] == "waiting" and waiting["iceServers"] == []
    await h.expect("lobby:waiting", lambda d: d["userId"] == guest)
    await h.ok("lobby:admit", {"meetingId": session.meeting_id, "userId": guest})
    await g.expect("lobby:admitted")
    return h, g


async def set_payment(server: RunningServer, booking_id: str, status: str) -> None:
    """What billing does once paid: the stored booking's paymentStatus."""
    await server.app[MONGO_DB]["bookings"].update_one({"_id": booking_id}, {"$set": {"paymentStatus": status}})


async def audit_actions(server: RunningServer, meeting_id: str) -> list[tuple[Any, str, Any]]:
    """(actor, action, target) of every stored audit entry of a meeting, oldest first."""
    cursor = server.app[MONGO_DB]["meeting_audit"].find({"meetingId": meeting_id}).sort("_id", 1)
    return [(doc["actorId"], doc["action"], doc["targetId"]) async for doc in cursor]


async def until(condition: Any, timeout: float = 20, step: float = 0.05) -> None:
    """Poll a synchronous or async condition until it holds (AssertionError after `timeout` seconds)."""
    for _ in range(int(timeout / step)):
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")
