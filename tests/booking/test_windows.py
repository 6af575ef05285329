"""A session may span adjacent availability windows: across midnight, overrides and DST, as one window."""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from clock import iso
from handlers.booking.slots import Busy, Rules, fits, grid, merge, windows
from tests.booking.helpers import ALL_WEEK, NS, at, book, fix_clock, slots, therapist
from tests.clients import SioClient
from tests.conftest import RunningServer

NOW = at("2026-02-01T00:00")
MONDAY_NIGHT = [{"weekday": 0, "start": "22:30", "end": "24:00"}, {"weekday": 1, "start": "00:00", "end": "02:00"}]
SATURDAY_NIGHT = [{"weekday": 5, "start": "22:00", "end": "24:00"}, {"weekday": 6, "start": "00:00", "end": "04:00"}]


def z(text: str) -> str:
    """The wire form of a UTC time written "2026-03-02T23:30"."""
    return str(iso(at(text)))


def rules(timezone: str = "UTC", weekly: list[dict[str, Any]] | None = None,
          overrides: list[dict[str, Any]] | None = None, session: int = 60, buffer: int = 0) -> Rules:
    """Rules for direct slot arithmetic (no notice, a year ahead)."""
    return Rules(timezone, ALL_WEEK if weekly is None else weekly, overrides or [], session, buffer, 0, 365)


async def refused(client: SioClient, start: datetime, request_id: str) -> dict[str, Any]:
    """booking:create at `start` that must fail with precondition_failed."""
    return await client.error("booking:create", {"therapistId": "t1", "start": iso(start), "requestId": request_id},
                              "precondition_failed")


# -- through the server -------------------------------------------------------------------------


async def test_an_all_week_therapist_takes_a_session_across_midnight(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server)   # 00:00-24:00 every day, 50 + 10 minutes
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", at("2026-03-02T23:15"))
    assert (booking["start"], booking["end"]) == (z("2026-03-02T23:15"), z("2026-03-03T00:05"))
    # The grid still restarts at each midnight of a wholly open day; around the booking it moves on.
    found = await slots(t, "t1", at("2026-03-02T21:00"), at("2026-03-03T02:00"))
    assert found == [z("2026-03-02T21:00"), z("2026-03-02T22:00"), z("2026-03-03T00:15"), z("2026-03-03T01:15")]


async def test_the_grid_crosses_midnight_when_windows_join(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server, weekly=MONDAY_NIGHT, sessionMinutes=60, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-04T00:00"))
    assert found == [z("2026-03-02T22:30"), z("2026-03-02T23:30"), z("2026-03-03T00:30")]
    data = await t.ok("availability:get", {"therapistId": "t1", "from": z("2026-03-02T23:00"),
                                           "to": z("2026-03-03T00:00")})
    assert data["slots"] == [{"start": z("2026-03-02T23:30"), "end": z("2026-03-03T00:30")}]
    client = await server.client("c1", "client", NS)
    await book(client, "t1", at("2026-03-02T23:45"))   # 23:45-00:45, off the grid, across the join
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-04T00:00"))
    assert found == [z("2026-03-02T22:30"), z("2026-03-03T00:45")]   # the grid restarts after the booking
    await refused(client, at("2026-03-03T01:15"), "late")  # would end 02:15, after the joined window


async def test_a_weekly_range_joins_the_next_dates_override(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    weekly = [{"weekday": 0, "start": "22:00", "end": "24:00"}, {"weekday": 1, "start": "09:00", "end": "12:00"}]
    overrides = [{"date": "2026-03-03", "start": "00:00", "end": "01:30"}]   # replaces Tuesday 09:00-12:00
    t = await therapist(server, weekly=weekly, overrides=overrides, sessionMinutes=90, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-04T00:00"))
    assert found == [z("2026-03-02T22:00"), z("2026-03-02T23:30")]
    # The next week has no override: Monday night and Tuesday morning stay apart.
    assert await slots(t, "t1", at("2026-03-09T00:00"), at("2026-03-11T00:00")) == [
        z("2026-03-09T22:00"), z("2026-03-10T09:00"), z("2026-03-10T10:30")]
    client = await server.client("c1", "client", NS)
    await refused(client, at("2026-03-09T23:30"), "apart")
    await book(client, "t1", at("2026-03-02T23:30"))


async def test_an_override_joins_the_next_dates_weekly_range(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    weekly = [{"weekday": 0, "start": "09:00", "end": "11:00"}, {"weekday": 1, "start": "00:00", "end": "01:00"}]
    overrides = [{"date": "2026-03-02", "start": "23:00", "end": "24:00"}]   # Monday evening instead
    t = await therapist(server, weekly=weekly, overrides=overrides, sessionMinutes=90, bufferMinutes=0)
    assert await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-04T00:00")) == [z("2026-03-02T23:00")]
    client = await server.client("c1", "client", NS)
    await refused(client, at("2026-03-02T09:00"), "replaced")   # the weekly Monday hours are gone that day
    await book(client, "t1", at("2026-03-02T23:30"), "joined")   # 23:30-01:00


async def test_a_day_off_breaks_the_join(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    overrides = [{"date": "2026-03-03", "unavailable": True}]
    t = await therapist(server, weekly=MONDAY_NIGHT, overrides=overrides, sessionMinutes=60, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-04T00:00"))
    assert found == [z("2026-03-02T22:30")]
    client = await server.client("c1", "client", NS)
    error = await refused(client, at("2026-03-02T23:30"), "off")
    assert "not available" in error["message"]
    await book(client, "t1", at("2026-03-02T23:00"))   # ends exactly at 24:00


async def test_overlapping_windows_of_adjacent_dates_are_one(server: RunningServer) -> None:
    # Nuuk springs forward at 23:00 Saturday 28 March 2026 (-02 -> -01): Saturday's 23:30 does not
    # exist and means 00:30 Sunday, so Saturday's window (23:00Z-01:30Z) overlaps Sunday's (01:00Z-03:00Z).
    fix_clock(server, now=NOW)
    weekly = [{"weekday": 5, "start": "21:00", "end": "23:30"}, {"weekday": 6, "start": "00:00", "end": "02:00"}]
    t = await therapist(server, timezone="America/Nuuk", weekly=weekly, sessionMinutes=90, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-28T00:00"), at("2026-03-30T00:00"))
    assert found == [z("2026-03-28T23:00"), z("2026-03-29T00:30")]   # one grid over 23:00Z-03:00Z
    client = await server.client("c1", "client", NS)
    await refused(client, at("2026-03-29T02:00"), "past")     # would end 03:30
    await book(client, "t1", at("2026-03-29T01:15"))   # 01:15-02:45: in neither window alone


@pytest.mark.parametrize("saturday,first,inside,real_hours", [
    ("2026-03-07", "2026-03-08T03:00", "2026-03-08T04:30", 5),   # EST -> EDT at 02:00: 22:00-04:00 is 5 h
    ("2026-10-31", "2026-11-01T02:00", "2026-11-01T03:30", 7),   # EDT -> EST at 02:00: 22:00-04:00 is 7 h
])
async def test_a_join_across_dst_keeps_real_time(server: RunningServer, saturday: str, first: str, inside: str,
                                                 real_hours: int) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server, timezone="America/New_York", weekly=SATURDAY_NIGHT, sessionMinutes=60,
                        bufferMinutes=0)
    day = at(f"{saturday}T00:00")
    found = await slots(t, "t1", day, day + timedelta(days=3))
    starts = [datetime.fromisoformat(s) for s in found]
    assert len(starts) == real_hours and starts[0] == at(first)   # Saturday 22:00 local
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", at(inside))   # 23:30 Saturday to 00:30 Sunday, local time
    assert booking["end"] == iso(at(inside) + timedelta(hours=1))
    window_end = starts[-1] + timedelta(hours=1)   # Sunday 04:00 local
    await refused(client, window_end - timedelta(minutes=30), "past")
    await book(client, "t1", window_end - timedelta(hours=1), "last")


async def test_reschedule_across_the_join(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server, weekly=MONDAY_NIGHT, sessionMinutes=60, bufferMinutes=0)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", at("2026-03-02T22:30"))
    moved = await client.ok("booking:reschedule", {"bookingId": booking["id"], "start": z("2026-03-02T23:40")})
    assert (moved["start"], moved["end"]) == (z("2026-03-02T23:40"), z("2026-03-03T00:40"))
    await client.error("booking:reschedule", {"bookingId": booking["id"], "start": z("2026-03-03T01:30")},
                       "precondition_failed")
    assert t.connected


# -- the arithmetic itself ------------------------------------------------------------------------


def test_merge_joins_touching_and_overlapping_windows_only() -> None:
    spans = [(at("2026-03-02T12:00"), at("2026-03-02T13:00")), (at("2026-03-02T09:00"), at("2026-03-02T10:00")),
             (at("2026-03-02T10:00"), at("2026-03-02T11:00")), (at("2026-03-02T10:30"), at("2026-03-02T10:45")),
             (at("2026-03-02T12:30"), at("2026-03-02T14:00")), (at("2026-03-02T14:05"), at("2026-03-02T15:00"))]
    assert merge(spans) == [(at("2026-03-02T09:00"), at("2026-03-02T11:00")),
                            (at("2026-03-02T12:00"), at("2026-03-02T14:00")),
                            (at("2026-03-02T14:05"), at("2026-03-02T15:00"))]
    assert merge([]) == []


def test_windows_join_across_midnight_and_a_week() -> None:
    assert windows(rules(), at("2026-03-02T23:15"), at("2026-03-03T00:05")) == [
        (at("2026-03-01T00:00"), at("2026-03-05T00:00"))]
    assert windows(rules(weekly=MONDAY_NIGHT), at("2026-03-02T23:00"), at("2026-03-03T00:00")) == [
        (at("2026-03-02T22:30"), at("2026-03-03T02:00"))]
    assert fits(rules(session=50), at("2026-03-02T23:15"), NOW) is None
    assert fits(rules(weekly=MONDAY_NIGHT), at("2026-03-03T01:05"), NOW) == "The therapist is not available then"


def test_the_listed_grid_does_not_depend_on_the_query() -> None:
    # 45 + 10 minutes does not divide a day: the grid of a wholly open day restarts at its midnight,
    # so a day's slots are the same whether the query starts that day or days before.
    r = rules(session=45, buffer=10)
    late = grid(r, [], at("2026-03-04T00:00"), at("2026-03-05T00:00"))
    early = grid(r, [], at("2026-03-01T00:00"), at("2026-03-05T00:00"))
    assert late == [slot for slot in early if slot[0] >= at("2026-03-04T00:00")]
    assert late[0][0] == at("2026-03-04T00:00") and late[-1][1] <= at("2026-03-05T00:00")
    # A partly open day is walked across midnight from its own start, whatever the query.
    r = rules(weekly=[{"weekday": d, "start": "20:00" if d == 0 else "00:00", "end": "24:00"} for d in range(2)],
              session=45, buffer=10)
    tuesday = (at("2026-03-03T00:00"), at("2026-03-04T00:00"))
    assert grid(r, [], *tuesday) == [s for s in grid(r, [], at("2026-03-02T00:00"), tuesday[1])
                                     if s[0] >= tuesday[0]]
    assert grid(r, [], *tuesday)[0][0] == at("2026-03-03T00:35")   # 20:00 + 5 x 55 minutes


def test_a_booking_restarts_the_grid_inside_a_joined_window() -> None:
    busy = [Busy(at("2026-03-02T23:45"), at("2026-03-03T00:45"))]
    found = grid(rules(weekly=MONDAY_NIGHT), busy, at("2026-03-02T00:00"), at("2026-03-04T00:00"))
    assert [s for s, _ in found] == [at("2026-03-02T22:30"), at("2026-03-03T00:45")]
