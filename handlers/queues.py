"""Job monitoring: every background queue's depth, oldest due job and counters; failed jobs listed and retried.

Depth and age come from the database (stores/queues.py: indexed counts, never a collection scan) and are
read at most once per REFRESH_SECONDS however often /metrics is scraped (concurrent scrapes share one read).
Successes, retries and failures are this process's counters (handlers/jobs.py `JobCounters`); Prometheus
sums them over processes. Only admins list or retry jobs (the namespace checks the role); a listing carries
ids, queue, state, tries, the short reason of the last failure and times, never a job's content.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from clock import Clock
from config import Config
from errors import InvalidPayload, NotFound, PreconditionFailed
from handlers.billing.payments import RETRY_CLAIMS_AFTER
from handlers.jobs import JobCounters
from stores.mongo import Database
from stores.queues import FAILED, SPECS, STATES, Job, QueueDepth, QueueProbe

REFRESH_SECONDS = 5.0
QUEUES = tuple(sorted(SPECS))  # every queue's name
JOB_STATES, DEFAULT_STATE = STATES, FAILED  # what `job:list` lists


@dataclass(frozen=True)
class QueueStatus:
    """One queue as /metrics and `python server.py jobs` show it."""

    name: str
    due: int
    oldest_age_seconds: float
    failed: int | None
    successes: int
    retries: int
    failures: int


@dataclass(frozen=True)
class JobPage:
    """A page of jobs: `{items, nextCursor}`."""

    items: list[Job]
    next_cursor: str | None


def lags(config: Config) -> dict[str, timedelta]:
    """How long after their stored time the jobs of some queues become due (the others: at once)."""
    return {"upload-orphans": timedelta(hours=config.upload_orphan_hours), "billing-refunds": RETRY_CLAIMS_AFTER}


def table(statuses: list[QueueStatus]) -> str:
    """Depth, oldest due age and failed jobs as a plain-text table (`python server.py jobs`; failed "-": the
    queue never gives a job up, it retries with backoff)."""
    head = ["queue", "due", "oldest due (s)", "failed"]
    rows = [[s.name, str(s.due), f"{s.oldest_age_seconds:.0f}", "-" if s.failed is None else str(s.failed)]
            for s in statuses]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
                      for row in [head, *rows])


def status_of(name: str, depth: QueueDepth, counters: JobCounters, now: datetime) -> QueueStatus:
    """A queue's figures from its depth and this process's counters."""
    count = counters.queue(name)
    age = max(0.0, (now - depth.oldest_due_at).total_seconds()) if depth.oldest_due_at else 0.0
    return QueueStatus(name, depth.due, age, depth.failed, count.successes, count.retries, count.failures)


class JobMonitor:
    """Every queue's probe, the app's counters, and the admin requests on jobs."""

    def __init__(self, db: Database, counters: JobCounters, clock: Clock, config: Config) -> None:
        due_after = lags(config)
        self.probes = {name: QueueProbe(db, spec, due_after.get(name, timedelta(0))) for name, spec in SPECS.items()}
        self.counters, self.clock = counters, clock
        self._depths: dict[str, QueueDepth] = {}
        self._read_at = -REFRESH_SECONDS
        self._reading = asyncio.Lock()

    async def depths(self) -> dict[str, QueueDepth]:
        """Every queue's depth, read from the database at most once per REFRESH_SECONDS."""
        async with self._reading:
            if time.monotonic() - self._read_at >= REFRESH_SECONDS:
                now = self.clock()
                self._depths = {name: await probe.depth(now) for name, probe in self.probes.items()}
                self._read_at = time.monotonic()
            return self._depths

    async def statuses(self) -> list[QueueStatus]:
        """Every queue's figures (depth at most REFRESH_SECONDS old)."""
        depths, now = await self.depths(), self.clock()
        return [status_of(name, depth, self.counters, now) for name, depth in depths.items()]

    async def page(self, queue: str, state: str, cursor: str | None, limit: int) -> JobPage:
        """`job:list`: jobs of a queue in a state (failed by default), by id."""
        probe = self._probe(queue)
        if state not in STATES:
            raise InvalidPayload("Unknown state", {"state": [f"Must be one of: {', '.join(STATES)}."]})
        items = await probe.page(state, self.clock(), cursor, limit + 1)
        more = len(items) > limit
        return JobPage(items[:limit], items[limit - 1].id if more else None)

    async def retry(self, queue: str, job_id: str) -> Job:
        """`job:retry`: a failed job queued again (tries reset, due now), durably."""
        probe = self._probe(queue)
        now = self.clock()
        if not await probe.retry(job_id, now):
            if not await probe.exists(job_id):
                raise NotFound("No such job")
            raise PreconditionFailed("Only a failed job can be retried")
        self._read_at = -REFRESH_SECONDS  # the next scrape shows it
        return Job(job_id, queue, "due", 0, None, now, None, None)

    def _probe(self, queue: str) -> QueueProbe:
        probe = self.probes.get(queue)
        if probe is None:
            raise NotFound("No such queue")
        return probe

