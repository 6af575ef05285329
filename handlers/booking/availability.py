"""Therapists' availability: storing the rules, computing open slots, announcing changes to subscribers."""
from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from clock import Clock
from errors import NotFound
from handlers.auth import User
from handlers.booking.deltas import OpenSlots, SlotsChanged
from handlers.booking.slots import Busy, Rules, bookable, grid
from handlers.publisher import Publisher
from stores.booking.availability import Availability, AvailabilityStore
from stores.booking.bookings import BookingStore

NAMESPACE = "/booking"
GRID_CACHE_SIZE = 1000
LOOK_BACK = timedelta(days=3)  # grid() may begin a joined window 2 local dates before `from` (slots.py)


def avail_room(therapist_id: str) -> str:
    """The room of everyone watching a therapist's open slots."""
    return f"avail:{therapist_id}"


class BusyCache:
    """Busy times per therapist, valid while the therapist's calendar version is unchanged.

    Every booking change bumps the version in the availability document that availability:get reads
    anyway, so a hit costs no query and a stale entry is never used after the change is written.
    """

    def __init__(self, size: int = 1000) -> None:
        self._entries: OrderedDict[str, tuple[int, datetime, datetime, list[Busy]]] = OrderedDict()
        self._size = size

    def get(self, therapist_id: str, version: int, start: datetime, end: datetime) -> list[Busy] | None:
        """The cached busy times if they are current and cover [start, end)."""
        entry = self._entries.get(therapist_id)
        if entry is None or entry[0] != version or start < entry[1] or end > entry[2]:
            return None
        self._entries.move_to_end(therapist_id)
        return entry[3]

    def put(self, therapist_id: str, version: int, start: datetime, end: datetime, busy: list[Busy]) -> None:
        """Remember the busy times of [start, end) at `version`."""
        self._entries[therapist_id] = (version, start, end, busy)
        self._entries.move_to_end(therapist_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class AvailabilityHandler:
    """availability:set / availability:get and the `availability:updated` announcements."""

    def __init__(self, store: AvailabilityStore, bookings: BookingStore, publisher: Publisher, clock: Clock) -> None:
        self.store = store
        self.bookings = bookings
        self.publisher = publisher
        self.clock = clock
        self.cache = BusyCache()
        self.grids: OrderedDict[str, tuple[tuple[Any, ...], list[tuple[datetime, datetime]]]] = \
            OrderedDict()  # the last computed range per therapist: subscribers refetch the same range at once

    async def replace(self, user: User, **values: Any) -> Availability:
        """Replace the calling therapist's availability and tell subscribers."""
        before, current = await self.store.replace(user.id, values)
        now = self.clock()
        days = max(values["max_days_ahead"], before.rules.max_days_ahead if before else 0)
        await self.announce(user.id, now, now + timedelta(days=days + 1))
        return current

    async def settings(self, user: User) -> Availability:
        """availability:settings: the calling therapist's whole availability as stored (to fill an edit form)."""
        stored = await self.store.get(user.id)
        if stored is None:
            raise NotFound("No availability set yet")
        return stored

    async def rules(self, therapist_id: str) -> tuple[Rules, dict[str, Any]] | None:
        """A therapist's slot rules and policy, or None when they have set no availability."""
        stored = await self.store.get(therapist_id)
        return (stored.rules, stored.policy) if stored else None

    async def open_slots(self, therapist_id: str, from_: datetime, to: datetime) -> OpenSlots:
        """The open slots of a therapist starting in [from, to)."""
        stored = await self.store.get(therapist_id)
        slots: list[tuple[datetime, datetime]] = []
        if stored is not None:
            rules = stored.rules
            key = (stored.calendar_version, stored.updated_at, from_, to)
            found = self.grids.get(therapist_id)
            if found is None or found[0] != key:
                busy = await self._busy(therapist_id, key[0], from_, to)
                found = key, grid(rules, busy, from_, to)
                self.grids[therapist_id] = found
                self.grids.move_to_end(therapist_id)
                if len(self.grids) > GRID_CACHE_SIZE:
                    self.grids.popitem(last=False)
            slots = bookable(rules, found[1], self.clock())
        policy = stored.policy if stored is not None else {}
        return OpenSlots(therapist_id, slots, policy.get("price"), bool(policy.get("require_payment")))

    async def _busy(self, therapist_id: str, version: int, from_: datetime, to: datetime) -> list[Busy]:
        """Busy times from the cache, else from one indexed query (widened so later ranges hit too).

        The slot grid may start walking a joined window up to LOOK_BACK before `from_`, so bookings that far
        back count too.
        """
        from_ -= LOOK_BACK
        cached = self.cache.get(therapist_id, version, from_, to)
        if cached is not None:
            return cached
        to = max(to, from_ + timedelta(days=62))
        holds = await self.bookings.holds(therapist_id, from_, to)
        busy = [Busy(start, end + timedelta(minutes=buffer)) for start, end, buffer in holds]
        self.cache.put(therapist_id, version, from_, to, busy)
        return busy

    async def changed(self, therapist_id: str, spans: list[tuple[datetime, datetime]]) -> None:
        """A booking of the therapist changed: invalidate cached busy times everywhere, then announce."""
        await self.store.bump(therapist_id)
        for start, end in spans:
            await self.announce(therapist_id, start, end)

    async def announce(self, therapist_id: str, start: datetime, end: datetime) -> None:
        """Tell subscribers that open slots in [start, end) may have changed."""
        await self.publisher.to_room(NAMESPACE, avail_room(therapist_id), "availability:updated",
                                     SlotsChanged(therapist_id, start, end))
