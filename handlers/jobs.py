"""Background work: periodic jobs that run in `python server.py worker` or inside the web process."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("careline.jobs")


@dataclass(frozen=True)
class Periodic:
    """A job run every `interval` seconds; it must be safe to run in several processes at once."""

    name: str
    interval: float
    run: Callable[[], Awaitable[None]]


async def run_periodic(job: Periodic, stop: asyncio.Event) -> None:
    """Run `job` until `stop` is set; failures are logged and retried on the next tick."""
    while not stop.is_set():
        try:
            await job.run()
        except Exception:
            log.exception("periodic job %s failed", job.name)
        try:
            await asyncio.wait_for(stop.wait(), job.interval)
        except TimeoutError:
            pass


async def run_all(jobs: list[Periodic], stop: asyncio.Event) -> None:
    """Run every job until `stop` is set."""
    if jobs:
        log.info("background jobs running: %s", ", ".join(job.name for job in jobs))
    await asyncio.gather(*(run_periodic(job, stop) for job in jobs))
