"""Coalescing: concurrent small operations answered by one round trip per batch.

A connect storm makes thousands of sockets each ask for the same kind of small write or read (record
the user, register the socket). `Coalescer.submit` queues one item and waits for its own answer; the
first item of a burst starts a flush task that runs on the next turn of the event loop, by when every
connect of the current turn has queued its item, and hands all of them to `flush` at once (one bulk
write, one Redis pipeline). Items that arrive while a batch is in flight form the next batch. An idle
server therefore answers a lone item at once, a busy one pays the round trip once per batch.

`flush(items)` returns one result per item, in order; a result that is an exception is raised to that
item's caller only. If `flush` itself raises, every caller of the batch gets that error.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("careline.stores")

Flush = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    """Items submitted while a batch is being prepared or sent are sent together by `flush`."""

    def __init__(self, flush: Flush[T, R], max_batch: int = 512) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue `item` for the next batch; the future of its result (or error)."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._run())
        return done

    async def submit(self, item: T) -> R:
        """Queue `item` for the next batch and return its result (or raise its error)."""
        return await self.enqueue(item)  # a cancelled caller cancels only its own future; its batch is sent

    def post(self, item: T) -> None:
        """Queue `item` without waiting for it (a failure is logged): nothing is held per caller meanwhile."""
        self.enqueue(item).add_done_callback(_log_failure)

    def __len__(self) -> int:
        return len(self._queue)

    async def drain(self) -> None:
        """Wait until everything queued so far is sent (shutdown, tests)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                await self._send(batch)
        finally:
            self._writer = None

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as error:  # nothing is known to have happened: every caller of the batch hears it
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if done.done():
                continue
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("a batched operation failed: %s", type(done.exception()).__name__)
