"""Preferences: defaults, partial updates, validation, and quiet hours that span midnight in a user's zone."""
from __future__ import annotations

from datetime import datetime, timezone

from handlers.notifications.quiet_hours import quiet_until
from stores.notifications.preferences import QuietHours
from tests.conftest import RunningServer

NS = "/notifications"


async def test_defaults_and_partial_updates(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    prefs = await client.ok("preferences:get")
    assert prefs["quietHours"] is None
    assert prefs["categories"]["message"] == {"inApp": True, "push": True, "email": False}
    assert prefs["categories"]["booking"]["email"] is True and prefs["categories"]["billing"]["email"] is True
    assert set(prefs["categories"]) == {"booking", "message", "worksheet", "billing", "meeting", "system"}
    quiet = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
    changed = await client.ok("preferences:set", {"categories": {"message": {"push": "always"}}, "quietHours": quiet})
    assert changed["categories"]["message"] == {"inApp": True, "push": "always", "email": False}
    assert changed["quietHours"] == quiet
    changed = await client.ok("preferences:set", {"categories": {"message": {"inApp": False, "email": True}}})
    assert changed["categories"]["message"] == {"inApp": False, "push": "always", "email": True}
    assert changed["quietHours"] == quiet
    assert (await client.ok("preferences:set", {"quietHours": None}))["quietHours"] is None
    other = await server.client("u2", namespace=NS)
    assert (await other.ok("preferences:get"))["categories"]["message"] == {"inApp": True, "push": True,
                                                                              "email": False}


async def test_invalid_preferences_change_nothing(server: RunningServer) -> None:
    client = await server.client("u1", namespace=NS)
    before = await client.ok("preferences:get")
    for bad in ({"categories": {"gossip": {"push": False}}},
                {"categories": {"message": {"push": "sometimes"}}},
                {"categories": {"message": {"inApp": "no", "push": False}}},
                {"categories": {"message": {"sms": True}}},
                {"quietHours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
                {"quietHours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
                {"quietHours": {"start": "22:00", "end": "07:00"}},
                {"theme": "dark"}):
        await client.error("preferences:set", bad, "invalid_payload")
    assert await client.ok("preferences:get") == before


def test_quiet_hours_spanning_midnight() -> None:
    quiet = QuietHours("22:00", "07:00", "America/New_York")  # UTC-5 in November
    evening = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)  # 22:30 local
    assert quiet_until(quiet, evening) == datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    early = datetime(2026, 11, 24, 11, 59, tzinfo=timezone.utc)  # 06:59 local
    assert quiet_until(quiet, early) == datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    assert quiet_until(quiet, datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)) is None  # 07:00 local
    assert quiet_until(quiet, datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)) is None  # 13:00 local


def test_quiet_hours_within_a_day_and_disabled() -> None:
    quiet = QuietHours("12:00", "14:00", "UTC")
    assert quiet_until(quiet, datetime(2026, 1, 1, 13, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 1, 1, 14, 0, tzinfo=timezone.utc)
    assert quiet_until(quiet, datetime(2026, 1, 1, 14, 0, tzinfo=timezone.utc)) is None
    assert quiet_until(QuietHours("12:00", "12:00", "UTC"), datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)) is None
    assert quiet_until(None, datetime(2026, 1, 1, tzinfo=timezone.utc)) is None
