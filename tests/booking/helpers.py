"""Shared setup for booking tests: a therapist with availability, a fixed clock, time helpers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from clock import iso
from handlers.events import BookingChanged
from tests.clients import SioClient
from tests.conftest import RunningServer, test_now

NS = "/booking"
ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


def at(text: str) -> datetime:
    """A UTC time from "2026-03-02T14:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def fix_clock(*servers: RunningServer, now: datetime) -> list[datetime]:
    """Make every server's booking rules use a movable 'now'; returns the one-element holder to move it."""
    holder = [now]
    for server in servers:
        server.clock.source = lambda: holder[0]
    return holder


def availability(**overrides: Any) -> dict[str, Any]:
    """A valid availability:set payload (UTC, all week, 50 + 10 minutes, no notice) with overrides."""
    base: dict[str, Any] = {"timezone": "UTC", "weekly": ALL_WEEK, "sessionMinutes": 50, "bufferMinutes": 10,
                            "minNoticeMinutes": 0, "maxDaysAhead": 365}
    return {**base, **overrides}


async def therapist(server: RunningServer, sub: str = "t1", **overrides: Any) -> SioClient:
    """A connected therapist who has set availability."""
    client = await server.client(sub, "therapist", NS)
    await client.ok("availability:set", availability(**overrides))
    return client


async def slots(client: SioClient, therapist_id: str, start: datetime, end: datetime) -> list[str]:
    """Open slot starts (ISO) in [start, end)."""
    data = await client.ok("availability:get", {"therapistId": therapist_id, "from": iso(start), "to": iso(end)})
    return [slot["start"] for slot in data["slots"]]


async def book(client: SioClient, therapist_id: str, start: datetime, request_id: str = "r1") -> dict[str, Any]:
    """booking:create that must succeed."""
    return await client.ok("booking:create", {"therapistId": therapist_id, "start": iso(start),  # type: ignore[no-any-return]
                                              "requestId": request_id})


def later(hours: float) -> datetime:
    """A time `hours` from now, on the hour (the tests' clock: real, or pinned to a time of day)."""
    now = test_now().replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=hours)


def collect_events(server: RunningServer) -> list[BookingChanged]:
    """Record every BookingChanged domain event of a server."""
    seen: list[BookingChanged] = []

    async def record(event: BookingChanged) -> None:
        seen.append(event)

    server.shared.bus.subscribe(BookingChanged, record)
    return seen


async def pending_booking(server: RunningServer, now: datetime,
                          start: datetime) -> tuple[list[BookingChanged], SioClient, SioClient, dict]:
    """The usual arrangement: clock at `now`, events recorded, therapist t1 open, client c1's pending
    booking at `start`. Returns (events, therapist, client, booking)."""
    fix_clock(server, now=now)
    events = collect_events(server)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    return events, t, client, await book(client, "t1", start)
