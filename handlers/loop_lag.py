"""How far behind this process's event loop runs: every request waits about that long before it is even read.

A timer asks to run every `every` seconds; how late it runs is the loop's lag then, smoothed over a few
samples (one slow turn, a garbage collection say, is not an overload). A process whose CPU cannot keep up with
what it is sent falls further behind with every turn: work that can be refused cheaply (a live edit the client
sends again) is refused while the lag is over a bound, so what is accepted is answered within about that bound
instead of everything being answered late.
"""
from __future__ import annotations

import asyncio

SAMPLE_EVERY = 0.02  # seconds between two samples
WEIGHT = 0.3  # weight of the newest sample in the smoothed lag


class LoopLag:
    """The smoothed lag (seconds) of the running event loop, sampled while started."""

    def __init__(self, every: float = SAMPLE_EVERY) -> None:
        self.every = every
        self.lag = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin sampling (in the running loop)."""
        if self._timer is None:
            self._schedule(asyncio.get_running_loop())

    def stop(self) -> None:
        """Stop sampling."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        due = loop.time() + self.every
        self._timer = loop.call_at(due, self._sample, loop, due)

    def _sample(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self.lag += WEIGHT * (max(0.0, loop.time() - due) - self.lag)
        self._schedule(loop)

    def over(self, bound: float) -> bool:
        """Whether the loop is more than `bound` seconds behind (never with a bound of 0: shedding is off)."""
        return 0 < bound < self.lag
