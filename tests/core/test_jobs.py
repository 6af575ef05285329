"""Periodic jobs: a failing dependency makes a job back off, a bug does not, and recovery resets the pace."""
from __future__ import annotations

import asyncio
import itertools
import time

from pymongo.errors import AutoReconnect

from handlers.jobs import Periodic, run_periodic


async def _pauses(outcomes: list[Exception | None], interval: float) -> list[float]:
    """Run a job whose runs end as `outcomes` say; the pauses between consecutive runs."""
    started: list[float] = []
    stop = asyncio.Event()

    async def job() -> None:
        started.append(time.monotonic())
        outcome = outcomes[len(started) - 1]
        if len(started) == len(outcomes):
            stop.set()
        if outcome is not None:
            raise outcome

    await asyncio.wait_for(run_periodic(Periodic("probe", interval, job), stop), 10)
    return [later - earlier for earlier, later in itertools.pairwise(started)]


async def test_a_job_backs_off_while_its_dependency_is_down_and_resumes_its_pace() -> None:
    down = AutoReconnect("connection refused")
    pauses = await _pauses([down, down, down, None, None], interval=0.05)
    assert pauses[0] >= 0.09 and pauses[1] >= 0.18 and pauses[2] >= 0.36  # doubling (sleeps only overshoot)
    assert pauses[3] < pauses[2] / 2  # back to the interval after a good run


async def test_a_bug_is_retried_at_the_normal_pace() -> None:
    pauses = await _pauses([RuntimeError("bug"), RuntimeError("bug"), None], interval=0.05)
    assert pauses[1] < 0.18  # a dependency failure would have doubled the pause to 0.2 s by now
