"""Quiet hours: `{start: "22:00", end: "07:00", timezone}` in the user's IANA zone, may span midnight."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from stores.notifications.preferences import QuietHours


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """When the quiet period containing `now` ends (UTC), or None when `now` is not in quiet hours."""
    if not quiet:
        return None
    zone = ZoneInfo(quiet.timezone)
    start, end = _clock(quiet.start), _clock(quiet.end)
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    spans_midnight = start > end
    inside = (clock >= start or clock < end) if spans_midnight else (start <= clock < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if spans_midnight and clock >= start else local.date()
    ends = datetime.combine(end_day, end, tzinfo=zone)
    return ends.astimezone(timezone.utc)
