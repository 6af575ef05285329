"""Therapists' availability: storing the rules, computing open slots, announcing changes to subscribers."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from handlers.auth import User
from handlers.publisher import Publisher
from handlers.serialize import camel, iso
from handlers.slots import Busy, Rules, open_slots
from stores.availability import AvailabilityStore
from stores.booking import BookingStore

NAMESPACE = "/booking"
RULE_FIELDS = ("timezone", "weekly", "overrides", "session_minutes", "buffer_minutes", "min_notice_minutes",
               "max_days_ahead")


def avail_room(therapist_id: str) -> str:
    """The room of everyone watching a therapist's open slots."""
    return f"avail:{therapist_id}"


def camel_keys(value: Any) -> Any:
    """snake_case keys -> camelCase, recursively."""
    if isinstance(value, dict):
        return {camel(key): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def rules_of(stored: dict[str, Any]) -> Rules:
    """The slot rules of a stored availability document."""
    return Rules(**{name: stored[name] for name in RULE_FIELDS})


def availability_wire(stored: dict[str, Any]) -> dict[str, Any]:
    """`Availability` as clients see it."""
    wire = camel_keys({key: value for key, value in stored.items() if key != "updated_at"})
    wire["overrides"] = [{k: v for k, v in o.items() if v is not None and v is not False}
                         for o in wire["overrides"]]
    return {**wire, "updatedAt": iso(stored.get("updated_at"))}


class AvailabilityHandler:
    """availability:set / availability:get and the `availability:updated` announcements."""

    def __init__(self, store: AvailabilityStore, bookings: BookingStore, publisher: Publisher,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.bookings = bookings
        self.publisher = publisher
        self.clock = clock

    async def set(self, user: User, **values: Any) -> dict[str, Any]:
        """Replace the calling therapist's availability and tell subscribers."""
        before, current = await self.store.replace(user.id, values)
        now = self.clock()
        days = max(values["max_days_ahead"], before["max_days_ahead"] if before else 0)
        await self.announce(user.id, now, now + timedelta(days=days + 1))
        return availability_wire(current)

    async def rules(self, therapist_id: str) -> tuple[Rules, dict[str, Any]] | None:
        """A therapist's slot rules and policy, or None when they have set no availability."""
        stored = await self.store.get(therapist_id)
        return (rules_of(stored), stored["policy"]) if stored else None

    async def open(self, user: User, therapist_id: str, from_: datetime, to: datetime) -> dict[str, Any]:
        """The open slots of a therapist starting in [from, to): one indexed query for the bookings."""
        found = await self.rules(therapist_id)
        slots: list[dict[str, str | None]] = []
        if found is not None:
            rules, _policy = found
            holds = await self.bookings.holds(therapist_id, from_, to)
            busy = [Busy(start, end + timedelta(minutes=buffer)) for start, end, buffer in holds]
            slots = [{"start": iso(s), "end": iso(e)} for s, e in open_slots(rules, busy, from_, to, self.clock())]
        return {"therapistId": therapist_id, "slots": slots}

    async def announce(self, therapist_id: str, start: datetime, end: datetime) -> None:
        """Tell subscribers that open slots in [start, end) may have changed."""
        await self.publisher.to_room(NAMESPACE, avail_room(therapist_id), "availability:updated",
                                     {"therapistId": therapist_id, "from": iso(start), "to": iso(end)})
