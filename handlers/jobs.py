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


class QueueCounters:
    """What one background queue did in this process: jobs done, put back for a retry, given up."""

    def __init__(self) -> None:
        self.successes = self.retries = self.failures = 0

    def succeeded(self, jobs: int = 1) -> None:
        """`jobs` jobs were done."""
        self.successes += jobs

    def retried(self, jobs: int = 1) -> None:
        """`jobs` jobs failed for now and will be tried again."""
        self.retries += jobs

    def failed(self, jobs: int = 1) -> None:
        """`jobs` jobs were given up."""
        self.failures += jobs


class JobCounters:
    """The counters of every queue of one app (per process: Prometheus sums the processes)."""

    def __init__(self) -> None:
        self._queues: dict[str, QueueCounters] = {}

    def queue(self, name: str) -> QueueCounters:
        """The counters of queue `name` (created at first use)."""
        return self._queues.setdefault(name, QueueCounters())

    def snapshot(self) -> dict[str, QueueCounters]:
        """Every queue's counters by name."""
        return dict(self._queues)


def counted(run: Callable[[], Awaitable[int]], counters: QueueCounters) -> Callable[[], Awaitable[int]]:
    """`run` (a job returning how many jobs it did) counting what it did as successes."""
    async def run_counted() -> int:
        done = await run()
        counters.succeeded(done)
        return done
    return run_counted


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
