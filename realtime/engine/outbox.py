"""Publishing to the Redis channel in batches: every message queued while one batch is on the wire goes out
in the next, as one pipeline (one write, one connection), in the order the emits were made."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("careline.engine")

#: sends a batch of encoded messages (in order) to the channel; raises when Redis does not take them
SendBatch = Callable[[list[str]], Awaitable[None]]


class PublishOutbox:
    """A FIFO of encoded messages and the one task that drains it.

    `publish` returns once the message's batch was sent (or given up after two tries, logged), or after
    `timeout` seconds, whichever is first: a Redis that stopped answering does not hold up the emit (the
    message then goes out with its batch or is given up with it). Under load each batch carries every
    message of the emits made meanwhile, so a publish costs a share of one round trip instead of one.
    """

    def __init__(self, send: SendBatch, timeout: float, max_batch: int = 512) -> None:
        self._send = send
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: list[tuple[str, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def publish(self, encoded: str) -> None:
        """Queue one message and wait (bounded) until its batch has been sent."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((encoded, sent))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(sent)
        except TimeoutError:
            log.error("cannot publish to redis within %.1f s: the event goes out when Redis takes it, if it does",
                      self._timeout)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
            await self._send_twice([encoded for encoded, _ in batch])
            for _, sent in batch:
                if not sent.done():
                    sent.set_result(None)

    async def _send_twice(self, messages: list[str]) -> None:
        for retries_left in (1, 0):
            try:
                async with asyncio.timeout(self._timeout):
                    await self._send(messages)
                return
            except Exception as exc:
                log.error("cannot publish %d event(s) to redis (%s)%s", len(messages), type(exc).__name__,
                          ", retrying" if retries_left else ", giving up")
