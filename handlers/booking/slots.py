"""Pure slot arithmetic: availability rules in local time -> open UTC slots; claim units; refund tiers.

Nothing here touches a store or the clock: every function takes the time it needs.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from stores.booking.availability import Rules

__all__ = ["Rules"]  # the stored availability rules, which every function here reads

UNIT_MINUTES = 5
UNIT = timedelta(minutes=UNIT_MINUTES)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T", bound=tuple)

DEFAULT_POLICY: dict[str, Any] = {
    "refund_tiers": [{"min_hours_before": 24, "percent": 100}, {"min_hours_before": 2, "percent": 75},
                     {"min_hours_before": 0, "percent": 50}],
    "confirm_within_hours": 24,
    "price": None,              # {amount (minor units), currency} or None: free / paid outside careline
    "require_payment": False,   # True: the session's meeting opens only once the booking is paid
}


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
    return naive.replace(tzinfo=zone).astimezone(UTC)


def day_windows(rules: Rules, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC windows of one local date: its overrides if any, else its weekly ranges."""
    overrides = [o for o in rules.overrides if o["date"] == day.isoformat()]
    return _day_windows(rules, ZoneInfo(rules.timezone), day, overrides)


def _day_windows(rules: Rules, zone: ZoneInfo, day: date,
                 overrides: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    """The UTC windows of one local date, given that date's overrides."""
    if overrides:
        if any(o.get("unavailable") for o in overrides):
            return []
        ranges = [(o["start"], o["end"]) for o in overrides]
    else:
        ranges = [(r["start"], r["end"]) for r in rules.weekly if r["weekday"] == day.weekday()]
    found = [(_local(day, minutes_of(s), zone), _local(day, minutes_of(e), zone)) for s, e in ranges]
    return sorted(w for w in found if w[0] < w[1])


def merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Windows sorted, those that touch or overlap (end >= next start) joined into one: O(n log n)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _dated_windows(rules: Rules, zone: ZoneInfo, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The merged UTC windows of the local dates first..last (overrides indexed once, not per date)."""
    by_date: dict[str, list[dict[str, Any]]] = {}
    for override in rules.overrides:
        by_date.setdefault(override["date"], []).append(override)
    found: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        found.extend(_day_windows(rules, zone, day, by_date.get(day.isoformat(), [])))
        day += DAY
    return merge(found)


def windows(rules: Rules, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The merged UTC windows of every local date from the one before `start`'s to the one after `end`'s.

    Adjacent and overlapping windows are one window: across midnight, between a weekly range and a
    neighbouring date's override, and across a DST change. A window may reach beyond [start, end).
    """
    zone = ZoneInfo(rules.timezone)
    return _dated_windows(rules, zone, _local_date(start, zone) - DAY, _local_date(end, zone) + DAY)


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The therapist's local date at a UTC moment."""
    return moment.astimezone(zone).date()


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

    Slots follow each other at session + buffer from the start of a merged window, across midnight;
    after a booking the grid restarts at the end of that booking's buffer, so free time around
    off-grid bookings is not lost. A local date open from 00:00 to 24:00 hands the next date a fresh
    start at midnight: an unbroken stretch has no start of its own to count from, and counting from
    wherever a query began would make the listed slots depend on the query.
    """
    zone = ZoneInfo(rules.timezone)
    first, last = _local_date(start, zone) - 2 * DAY, _local_date(end, zone) + DAY
    index = BusyIndex(busy)
    found: list[tuple[datetime, datetime]] = []
    for segment_start, segment_end in _segments(rules, zone, first, last):
        if segment_end - rules.session >= start and segment_start < end:
            found.extend(_window_slots(rules, index, segment_start, segment_end, end))
    return [(s, e) for s, e in found if start <= s < end]


def _segments(rules: Rules, zone: ZoneInfo, first: date,
              last: date) -> Iterator[tuple[datetime, datetime]]:
    """The merged windows of first..last, cut at every local midnight that ends a wholly open date."""
    midnights = [_local(first + n * DAY, 0, zone) for n in range((last - first).days + 2)]
    for window_start, window_end in _dated_windows(rules, zone, first, last):
        segment_start = window_start
        # The first midnight at or after the window start opens the first date the window can cover
        # whole; every later midnight inside the window ends such a date.
        following = bisect_left(midnights, window_start) + 1
        while following < len(midnights) and midnights[following] < window_end:
            if midnights[following] > segment_start:
                yield segment_start, midnights[following]
                segment_start = midnights[following]
            following += 1
        yield segment_start, window_end


def bookable(rules: Rules, slots: list[T], now: datetime) -> list[T]:
    """The slots (tuples starting with their start) that min notice and max days allow at `now`."""
    earliest, latest = bookable_span(rules, now)
    return [slot for slot in slots if earliest <= slot[0] <= latest]


def _window_slots(rules: Rules, busy: BusyIndex, window_start: datetime, window_end: datetime,
                  stop: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The grid of one window, walked from its start up to slots starting before `stop`."""
    candidate = window_start
    while candidate < stop and candidate + rules.session <= window_end:
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
    if any(ws <= start and end <= we for ws, we in windows(rules, start, end)):
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
