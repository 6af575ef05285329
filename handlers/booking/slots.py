"""Pure slot arithmetic: availability rules in local time -> open UTC slots; claim units; refund tiers.

Nothing here touches a store or the clock: every function takes the time it needs.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Iterator, TypeVar
from zoneinfo import ZoneInfo

UNIT_MINUTES = 5
UNIT = timedelta(minutes=UNIT_MINUTES)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

T = TypeVar("T", bound=tuple)  # type: ignore[type-arg]

DEFAULT_POLICY: dict[str, Any] = {
    "refund_tiers": [{"min_hours_before": 24, "percent": 100}, {"min_hours_before": 2, "percent": 75},
                     {"min_hours_before": 0, "percent": 50}],
    "confirm_within_hours": 24,
}


@dataclass(frozen=True)
class Rules:
    """A therapist's availability, as stored (times "HH:MM" in `timezone`)."""

    timezone: str
    weekly: list[dict[str, Any]]
    overrides: list[dict[str, Any]]
    session_minutes: int
    buffer_minutes: int
    min_notice_minutes: int
    max_days_ahead: int

    @property
    def session(self) -> timedelta:
        """The length of one session."""
        return timedelta(minutes=self.session_minutes)

    @property
    def buffer(self) -> timedelta:
        """The free time kept around every session."""
        return timedelta(minutes=self.buffer_minutes)


@dataclass(frozen=True)
class Busy:
    """Time a booking holds: from its start to its end plus its own (snapshotted) buffer."""

    start: datetime
    until: datetime


def minutes_of(text: str) -> int:
    """"09:30" -> 570; "24:00" -> 1440."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """A local wall time on `day` (24:00 = next midnight) as UTC; a time in a spring-forward gap maps forward."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return naive.replace(tzinfo=zone).astimezone(timezone.utc)


def day_windows(rules: Rules, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC windows of one local date: its overrides if any, else its weekly ranges."""
    zone = ZoneInfo(rules.timezone)
    overrides = [o for o in rules.overrides if o["date"] == day.isoformat()]
    if overrides:
        if any(o.get("unavailable") for o in overrides):
            return []
        ranges = [(o["start"], o["end"]) for o in overrides]
    else:
        ranges = [(r["start"], r["end"]) for r in rules.weekly if r["weekday"] == day.weekday()]
    windows = [(_local(day, minutes_of(s), zone), _local(day, minutes_of(e), zone)) for s, e in ranges]
    return sorted(w for w in windows if w[0] < w[1])


def _dates(rules: Rules, start: datetime, end: datetime) -> Iterator[date]:
    zone = ZoneInfo(rules.timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def bookable_span(rules: Rules, now: datetime) -> tuple[datetime, datetime]:
    """Earliest and latest allowed slot start: min notice ahead, max days ahead."""
    return now + timedelta(minutes=rules.min_notice_minutes), now + timedelta(days=rules.max_days_ahead)


class BusyIndex:
    """Bookings sorted by start, for finding the one a candidate slot touches in O(log n)."""

    def __init__(self, busy: Iterable[Busy]) -> None:
        self.items = sorted(busy, key=lambda b: b.start)
        self.starts = [b.start for b in self.items]
        self.longest = max((b.until - b.start for b in self.items), default=timedelta(0))

    def blocker(self, start: datetime, end: datetime, buffer: timedelta) -> Busy | None:
        """A booking that [start, end) touches, the slot's buffer before it included."""
        index = bisect_left(self.starts, end + buffer)
        while index > 0:
            index -= 1
            item = self.items[index]
            if item.start + self.longest <= start:
                return None
            if start < item.until:
                return item
        return None


def _ceil_unit(moment: datetime) -> datetime:
    rest = (moment - EPOCH) % UNIT
    return moment if not rest else moment + (UNIT - rest)


def open_slots(rules: Rules, busy: list[Busy], start: datetime, end: datetime,
               now: datetime) -> list[tuple[datetime, datetime]]:
    """Open slots starting in [start, end): inside a window, within notice/max days, clear of every booking."""
    return bookable(rules, grid(rules, busy, start, end), now)


def grid(rules: Rules, busy: list[Busy], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Slots starting in [start, end) inside a window and clear of every booking (whatever the time now).

    Slots follow each other at session + buffer from the window start; after a booking the grid
    restarts at the end of that booking's buffer, so free time around off-grid bookings is not lost.
    """
    index = BusyIndex(busy)
    found: list[tuple[datetime, datetime]] = []
    for day in _dates(rules, start - timedelta(days=1), end):
        for window_start, window_end in day_windows(rules, day):
            found.extend(_window_slots(rules, index, window_start, window_end))
    return [(s, e) for s, e in found if start <= s < end]


def bookable(rules: Rules, slots: list[T], now: datetime) -> list[T]:
    """The slots (tuples starting with their start) that min notice and max days allow at `now`."""
    earliest, latest = bookable_span(rules, now)
    return [slot for slot in slots if earliest <= slot[0] <= latest]


def _window_slots(rules: Rules, busy: BusyIndex, window_start: datetime,
                  window_end: datetime) -> Iterator[tuple[datetime, datetime]]:
    candidate = window_start
    while candidate + rules.session <= window_end:
        blocker = busy.blocker(candidate, candidate + rules.session, rules.buffer)
        if blocker is None:
            yield candidate, candidate + rules.session
            candidate += rules.session + rules.buffer
        else:
            candidate = max(_ceil_unit(blocker.until), candidate + UNIT)


def fits(rules: Rules, start: datetime, now: datetime, length: timedelta | None = None) -> str | None:
    """Why a session (of `length`, else the rules' length) may not start at `start`, or None when it may."""
    if (start - EPOCH) % UNIT:
        return f"A session starts on a {UNIT_MINUTES}-minute boundary"
    earliest, latest = bookable_span(rules, now)
    if start < earliest:
        return "That time is too soon"
    if start > latest:
        return "That time is too far ahead"
    end = start + (length or rules.session)
    for day in _dates(rules, start - timedelta(days=1), start):
        if any(ws <= start and end <= we for ws, we in day_windows(rules, day)):
            return None
    return "The therapist is not available then"


def units(start: datetime, end: datetime, buffer_minutes: int) -> list[int]:
    """The claim units a booking holds: every 5-minute unit of [start, end + buffer).

    Two bookings share a unit exactly when they are closer than a buffer, so a unique
    (therapistId, unit) index lets only one of them exist.
    """
    first = (start - EPOCH) // UNIT
    last = -((EPOCH - (end + timedelta(minutes=buffer_minutes))) // UNIT)
    return list(range(first, last))


def refund_percent(tiers: Iterable[dict[str, Any]], start: datetime, at: datetime) -> int:
    """The percent of the first tier (most hours first) whose `min_hours_before` is still met at `at`."""
    ahead = start - at
    for tier in sorted(tiers, key=lambda t: -t["min_hours_before"]):
        if ahead >= timedelta(hours=tier["min_hours_before"]):
            return int(tier["percent"])
    return 0
