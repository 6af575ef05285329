"""Stored webhook events applied in the background: a few at a time, after the deliveries waiting to be stored.

Answering a delivery costs one insert (group-committed with the deliveries arriving alongside it); applying
an event costs several reads and writes and often a call to Stripe. Both share the database and the CPU, so
applying is kept out of the answers' way: at most `workers` events are applied at once per process, a worker
starts its next event only once the deliveries queued for the inbox are written (or `patience` seconds have
passed, so under steady load applying still moves on), and the events a worker applied in a row are marked
applied with one write. An event applied but not yet marked when its process dies is applied again by
another process once its lease runs out: every applier re-reads current state, so that changes nothing.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from clock import utcnow
from stores.billing.inbox import InboxEvent, WebhookInbox

log = logging.getLogger("careline.billing.webhooks")
WORKERS = 4  # events applied at once per process
BATCH = 32  # events a worker applies before it marks them applied in one write
PATIENCE = 0.05  # seconds a worker waits for the inbox's pending inserts before its next event


class BackgroundAppliers:
    """A queue of leased events and the few workers that apply them."""

    def __init__(self, inbox: WebhookInbox, attempt: Callable[[InboxEvent], Awaitable[bool]],
                 workers: int = WORKERS, batch: int = BATCH, patience: float = PATIENCE) -> None:
        self._inbox = inbox
        self._attempt = attempt  # True when the event took effect (a failure is recorded by it for a retry)
        self._max_workers, self._batch, self._patience = workers, batch, patience
        self._queue: deque[InboxEvent] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def waiting(self) -> int:
        """Events queued here and not started yet."""
        return len(self._queue)

    def submit(self, event: InboxEvent) -> None:
        """Apply `event` (leased to this process) soon; ignored once closing (its lease is released)."""
        if self._closing:
            return
        self._queue.append(event)
        if len(self._workers) < self._max_workers:
            worker = asyncio.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        while self._queue and not self._closing:
            try:
                await self._apply_some()
            except Exception as exc:  # the database failed: those events' leases run out, the sweep retries them
                log.warning("applying stripe events: %s", type(exc).__name__)
                await asyncio.sleep(self._patience)

    async def _apply_some(self) -> None:
        done: list[str] = []
        try:
            while self._queue and not self._closing and len(done) < self._batch:
                await self._inbox.storing_done(self._patience)
                if not self._queue:
                    break
                event = self._queue.popleft()
                if await self._attempt(event):
                    done.append(event.id)
        finally:
            await self._inbox.applied_many(done, utcnow())

    async def close(self) -> None:
        """Finish the events being applied, then give up the leases of the ones still queued."""
        self._closing = True
        await asyncio.gather(*self._workers, return_exceptions=True)
        left = [event.id for event in self._queue]
        self._queue.clear()
        await self._inbox.release(left)
