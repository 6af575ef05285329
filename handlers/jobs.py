"""Background work: periodic jobs that run in `python server.py worker` or inside the web process."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stores.errors import failed_dependency

log = logging.getLogger("careline.jobs")


@dataclass(frozen=True)
class Periodic:
    """A job run every `interval` seconds; it must be safe to run in several processes at once."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]  # what it returns (e.g. a count) is ignored


MAX_BACKOFF_SECONDS = 30.0  # longest pause of a job whose dependency is down


async def run_periodic(job: Periodic, stop: asyncio.Event) -> None:
    """Run `job` until `stop` is set; failures are logged and retried on the next tick.

    While a dependency is down (MongoDB or Redis unreachable or too slow), the job waits twice as long
    after each failed run, up to MAX_BACKOFF_SECONDS, and logs one line per failure instead of a
    traceback; its first successful run catches up with everything that came due meanwhile.
    """
    delay = job.interval
    while not stop.is_set():
        delay = await _run_once(job, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass


async def _run_once(job: Periodic, delay: float) -> float:
    """Run the job once; the pause before the next run."""
    try:
        await job.run()
    except Exception as exc:
        dependency = failed_dependency(exc)
        if dependency is None:
            log.exception("periodic job %s failed", job.name)
            return job.interval
        backoff = min(max(delay * 2, job.interval), MAX_BACKOFF_SECONDS)
        log.warning("periodic job %s: %s unavailable (%s), next try in %.1f s", job.name, dependency,
                    type(exc).__name__, backoff)
        return backoff
    return job.interval


async def run_all(jobs: list[Periodic], stop: asyncio.Event) -> None:
    """Run every job until `stop` is set."""
    if jobs:
        log.info("background jobs running: %s", ", ".join(job.name for job in jobs))
    await asyncio.gather(*(run_periodic(job, stop) for job in jobs))
