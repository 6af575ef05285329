"""Speed path: many timers on one loop timer (heartbeats, connect deadlines, token expiries).

A `call_later` per connection costs a timer handle, a libuv timer and a bound method (~0.7 KB) for as
long as the connection idles, and a task per deadline far more. A wheel keeps each key in the bucket of
its due time, rounded up to `tick` seconds, and runs one loop timer for the earliest bucket: a key
fires between 0 and `tick` seconds late, never early, and costs two dictionary entries while it waits.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("careline.engine")


class TimerWheel(Generic[K]):
    """Keys due at a time; `fire(key)` is called once per `add` that was not discarded or replaced."""

    def __init__(self, tick: float, fire: Callable[[K], None]) -> None:
        self.tick = tick
        self._fire = fire
        self._buckets: dict[int, dict[K, None]] = {}
        self._slot_of: dict[K, int] = {}
        self._due: list[int] = []  # bucket numbers, a heap (stale numbers are skipped)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def add(self, key: K, delay: float) -> None:
        """(Re)schedule `key` to fire `delay` seconds from now (at most `tick` later)."""
        self.discard(key)
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + max(0.0, delay)) / self.tick)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = {}
            heapq.heappush(self._due, slot)
        bucket[key] = None
        self._slot_of[key] = slot
        if self._timer_slot is None or slot < self._timer_slot:
            self._arm(loop, slot)

    def discard(self, key: K) -> None:
        """Forget `key` if it is waiting."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        bucket = self._buckets.get(slot)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._buckets[slot]

    def clear(self) -> None:
        """Forget every key and stop the loop timer."""
        self._buckets.clear()
        self._slot_of.clear()
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_slot = None

    def _arm(self, loop: asyncio.AbstractEventLoop, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = loop.call_at(slot * self.tick, self._run)

    def _run(self) -> None:
        self._timer = self._timer_slot = None
        loop = asyncio.get_running_loop()
        now = math.floor((loop.time() + 0.001) / self.tick)  # the loop may run a timer up to its resolution early
        due = self._due
        while due and due[0] <= now:
            slot = heapq.heappop(due)
            for key in self._buckets.pop(slot, None) or ():
                if self._slot_of.get(key) != slot:  # discarded or rescheduled by an earlier callback
                    continue
                del self._slot_of[key]
                try:
                    self._fire(key)
                except Exception:
                    log.exception("timer callback failed")
        while due and due[0] not in self._buckets:
            heapq.heappop(due)
        if due:
            self._arm(loop, due[0])
