"""Open slots: DST in the therapist's zone, overrides, min notice, max days, buffers, validation."""
from __future__ import annotations

from datetime import timedelta

import pytest

from rest.app_keys import MONGO_DB
from tests.booking.helpers import NS, at, availability, book, fix_clock, slots, therapist
from tests.conftest import RunningServer

NY_SUNDAY = [{"weekday": 6, "start": "09:00", "end": "17:00"}]


@pytest.mark.parametrize("before,after,utc_before,utc_after", [
    ("2026-03-01", "2026-03-08", 14, 13),   # EST -> EDT on Sunday 8 March 2026
    ("2026-10-25", "2026-11-01", 13, 14),   # EDT -> EST on Sunday 1 November 2026
])
async def test_local_hours_survive_dst(server: RunningServer, before: str, after: str, utc_before: int,
                                       utc_after: int) -> None:
    fix_clock(server, now=at("2026-02-01T00:00"))
    t = await therapist(server, timezone="America/New_York", weekly=NY_SUNDAY, sessionMinutes=60,
                        bufferMinutes=0)
    for day, hour in ((before, utc_before), (after, utc_after)):
        found = await slots(t, "t1", at(f"{day}T00:00"), at(f"{day}T00:00") + timedelta(days=1))
        assert found == [f"{day}T{hour + i:02d}:00:00.000Z" for i in range(8)], found


async def test_a_window_across_the_spring_gap_is_two_real_hours(server: RunningServer) -> None:
    fix_clock(server, now=at("2026-02-01T00:00"))
    t = await therapist(server, timezone="America/New_York", sessionMinutes=60, bufferMinutes=0,
                        weekly=[{"weekday": 6, "start": "01:00", "end": "04:00"}])
    assert await slots(t, "t1", at("2026-03-08T00:00"), at("2026-03-09T00:00")) == [
        "2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z"]
    assert await slots(t, "t1", at("2026-11-01T00:00"), at("2026-11-02T00:00")) == [
        "2026-11-01T05:00:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T07:00:00.000Z", "2026-11-01T08:00:00.000Z"]


async def test_overrides_replace_the_weekly_hours(server: RunningServer) -> None:
    fix_clock(server, now=at("2026-02-01T00:00"))
    weekly = [{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(5)]
    overrides = [{"date": "2026-03-02", "unavailable": True},
                 {"date": "2026-03-03", "start": "14:00", "end": "15:00"},
                 {"date": "2026-03-07", "start": "10:00", "end": "11:00"}]   # a Saturday
    t = await therapist(server, weekly=weekly, overrides=overrides, sessionMinutes=60, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-09T00:00"))
    assert found[:2] == ["2026-03-03T14:00:00.000Z", "2026-03-04T09:00:00.000Z"]
    assert "2026-03-07T10:00:00.000Z" in found and not any(s.startswith("2026-03-02") for s in found)
    assert not any(s.startswith("2026-03-08") for s in found)


async def test_min_notice_and_max_days(server: RunningServer) -> None:
    fix_clock(server, now=at("2026-03-02T10:00"))
    t = await therapist(server, minNoticeMinutes=180, maxDaysAhead=2, sessionMinutes=60, bufferMinutes=0)
    found = await slots(t, "t1", at("2026-03-02T00:00"), at("2026-03-06T00:00"))
    assert found[0] == "2026-03-02T13:00:00.000Z" and found[-1] == "2026-03-04T10:00:00.000Z"
    client = await server.client("c1", "client", NS)
    for start in ("2026-03-02T12:00", "2026-03-04T11:00"):
        error = await client.error("booking:create", {"therapistId": "t1", "start": start + ":00Z",
                                                      "requestId": start}, "precondition_failed")
        assert "too" in error["message"]


async def test_buffers_keep_time_free_on_both_sides(server: RunningServer) -> None:
    fix_clock(server, now=at("2026-03-01T00:00"))
    t = await therapist(server, weekly=[{"weekday": 0, "start": "09:00", "end": "13:00"}])
    day = (at("2026-03-02T00:00"), at("2026-03-03T00:00"))
    assert await slots(t, "t1", *day) == ["2026-03-02T09:00:00.000Z", "2026-03-02T10:00:00.000Z",
                                          "2026-03-02T11:00:00.000Z", "2026-03-02T12:00:00.000Z"]
    client = await server.client("c1", "client", NS)
    await book(client, "t1", at("2026-03-02T10:20"))   # off the grid: 10:20-11:10, buffer to 11:20
    assert await slots(t, "t1", *day) == ["2026-03-02T09:00:00.000Z", "2026-03-02T11:20:00.000Z"]
    # 09:00-09:50 would end less than a buffer before 10:20; 11:15 starts inside the buffer after it.
    for start in ("2026-03-02T09:25", "2026-03-02T11:15"):
        await client.error("booking:create", {"therapistId": "t1", "start": start + ":00Z", "requestId": start},
                           "conflict")
    await book(client, "t1", at("2026-03-02T09:20"), "r2")  # ends 10:10, exactly a buffer before 10:20
    assert await slots(t, "t1", *day) == ["2026-03-02T11:20:00.000Z"]


@pytest.mark.parametrize("change,field", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"weekly": [{"weekday": 0, "start": "10:00", "end": "09:00"}]}, "weekly"),
    ({"weekly": [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 1, "start": "11:00",
                                                                    "end": "13:00"}]}, "weekly"),
    ({"weekly": [{"weekday": 7, "start": "09:00", "end": "12:00"}]}, "weekly"),
    ({"weekly": [{"weekday": 0, "start": "9am", "end": "12:00"}]}, "weekly"),
    ({"overrides": [{"date": "2026-02-30", "unavailable": True}]}, "overrides"),
    ({"overrides": [{"date": "2026-03-02", "start": "10:00"}]}, "overrides"),
    ({"overrides": [{"date": "2026-03-02", "unavailable": True, "start": "10:00", "end": "11:00"}]}, "overrides"),
    ({"sessionMinutes": 10}, "sessionMinutes"),
    ({"sessionMinutes": 241}, "sessionMinutes"),
    ({"bufferMinutes": -5}, "bufferMinutes"),
    ({"maxDaysAhead": 366}, "maxDaysAhead"),
    ({"minNoticeMinutes": "soon"}, "minNoticeMinutes"),
    ({"policy": {"refundTiers": [{"minHoursBefore": 2, "percent": 101}]}}, "policy"),
    ({"policy": {"refundTiers": []}}, "policy"),
    ({"policy": {"confirmWithinHours": 0}}, "policy"),
    ({"colour": "blue"}, "colour"),
])
async def test_invalid_availability_changes_nothing(server: RunningServer, change: dict, field: str) -> None:
    t = await therapist(server, sessionMinutes=45)
    before = await server.app[MONGO_DB]["availability"].find_one({"_id": "t1"})
    error = await t.error("availability:set", availability(**change), "invalid_payload")
    assert field in error["details"], error
    assert await server.app[MONGO_DB]["availability"].find_one({"_id": "t1"}) == before


async def test_only_therapists_set_availability_and_ranges_are_bounded(server: RunningServer) -> None:
    client = await server.client("c1", "client", NS)
    await client.error("availability:set", availability(), "forbidden")
    assert await server.app[MONGO_DB]["availability"].count_documents({}) == 0
    error = await client.error("availability:get", {"therapistId": "t1", "from": "2026-01-01T00:00:00.000Z",
                                                    "to": "2026-03-05T00:00:00.000Z"}, "invalid_payload")
    assert "to" in error["details"]
    assert await slots(client, "nobody", at("2026-03-01T00:00"), at("2026-03-02T00:00")) == []


async def test_availability_round_trips_with_default_policy(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    data = await t.ok("availability:set", {"timezone": "Europe/Berlin", "weekly": NY_SUNDAY})
    assert data["therapistId"] == "t1" and data["timezone"] == "Europe/Berlin"
    assert data["policy"] == {"refundTiers": [{"minHoursBefore": 24, "percent": 100},
                                              {"minHoursBefore": 2, "percent": 75},
                                              {"minHoursBefore": 0, "percent": 50}], "confirmWithinHours": 24,
                              "price": None, "requirePayment": False}
    assert data["weekly"] == NY_SUNDAY and data["sessionMinutes"] == 50
