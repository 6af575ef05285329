"""The lobby's requests in flight in one process, and the feature's background work that waits its turn behind them.

A burst of joins (the top of the hour) shares one database with the notifications those joins cause ("you
were let in", "your session is starting": about ten database commands each, more than the join itself). A
notice is not part of any ack, so it runs after the joins and admissions under way here: it starts once none
is in flight (or after `max_wait` seconds under a load that never pauses), and at most `parallel` run at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Foreground:
    """Counts the requests that must not wait for background work; hands background work its turns."""

    def __init__(self, max_wait: float, parallel: int = 2) -> None:
        self._max_wait = max_wait
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._turns = asyncio.Semaphore(parallel)

    @property
    def busy(self) -> int:
        """Requests in flight."""
        return self._busy

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """A request under way: background work does not start meanwhile."""
        self._busy += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._quiet.set()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Background work: once no request is under way (or `max_wait` seconds after it asked), `parallel` at a
        time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        async with self._turns:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), max(0.0, deadline - loop.time()))
            yield


class InForeground(Protocol):
    """A handler whose requests background work waits for."""

    foreground: Foreground


H = TypeVar("H", bound=InForeground)


def foreground(method: Callable[Concatenate[H, P], Awaitable[R]]) -> Callable[Concatenate[H, P], Awaitable[R]]:
    """Run the handler method as a request background work waits for."""
    @functools.wraps(method)
    async def run(self: H, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.foreground.running():
            return await method(self, *args, **kwargs)
    return run
