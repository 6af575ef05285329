"""Meeting notices wait behind the lobby's requests in flight (handlers/meetings/foreground.py)."""
from __future__ import annotations

import asyncio

from handlers.meetings.foreground import Foreground


async def test_background_work_starts_once_no_request_is_in_flight() -> None:
    foreground, started = Foreground(max_wait=60), asyncio.Event()

    async def notice() -> None:
        async with foreground.turn():
            started.set()
    with foreground.running():
        task = asyncio.create_task(notice())
        await asyncio.sleep(0.05)
        assert not started.is_set()
    await asyncio.wait_for(started.wait(), 5)
    await task


async def test_background_work_does_not_wait_past_max_wait_under_steady_requests() -> None:
    foreground, done = Foreground(max_wait=0.1, parallel=1), []

    async def notice(n: int) -> None:
        async with foreground.turn():
            done.append(n)
    with foreground.running():  # a request that never ends
        await asyncio.wait_for(asyncio.gather(*(notice(n) for n in range(5))), 5)
    assert sorted(done) == [0, 1, 2, 3, 4]
