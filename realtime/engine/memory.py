"""Giving memory back to the system after a wave of closed connections.

CPython frees the objects of a closed connection, but the allocator keeps the pages: pymalloc keeps an
arena while any object in it lives, and glibc keeps freed heap pages mapped until `malloc_trim` returns
them. After a reconnect storm's connections close, `ReleaseAfterCloses` waits for the wave to pass
(`delay` seconds after the `every`-th close) and calls glibc's `malloc_trim(0)` once (a few ms for a
large heap). Elsewhere than glibc it does nothing.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("careline.engine")


def _glibc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _glibc_trim()


def release_memory() -> bool:
    """Return the heap's free pages to the system (glibc); False where that is not available."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class ReleaseAfterCloses:
    """Counts closed connections; `delay` s after every `every`-th, releases the allocator's free memory."""

    def __init__(self, every: int = 1000, delay: float = 2.0) -> None:
        self.every, self.delay = every, delay
        self._closed = 0
        self._timer: asyncio.TimerHandle | None = None
        self.releases = 0

    def closed(self) -> None:
        """One connection closed."""
        self._closed += 1
        if self._closed >= self.every and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._release)

    def _release(self) -> None:
        self._timer = None
        self._closed = 0
        if release_memory():
            self.releases += 1
            log.debug("returned free memory to the system after a wave of closes")
