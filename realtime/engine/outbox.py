"""Publishing to the Redis channel in batches: every message queued while one batch is on the wire goes out
in the next, as one pipeline (one write, one connection), in the order the emits were made."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from stores.coalesce import Coalescer

log = logging.getLogger("careline.engine")

#: sends a batch of encoded messages (in order) to the channel; raises when Redis does not take them
SendBatch = Callable[[list[str]], Awaitable[None]]


class PublishOutbox:
    """A FIFO of encoded messages sent in batches (a `Coalescer` whose flush is one pipeline to the channel).

    `publish` returns once the message's batch was sent (or given up after two tries, logged), or after
    `timeout` seconds, whichever is first: a Redis that stopped answering does not hold up the emit (the
    message then goes out with its batch or is given up with it). Under load each batch carries every
    message of the emits made meanwhile, so a publish costs a share of one round trip instead of one.
    """

    def __init__(self, send: SendBatch, timeout: float, max_batch: int = 512) -> None:
        self._send = send
        self._timeout = timeout
        self._batches: Coalescer[str, None] = Coalescer(self._send_twice, max_batch=max_batch)

    async def publish(self, encoded: str) -> None:
        """Queue one message and wait (bounded) until its batch has been sent."""
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(self._batches.enqueue(encoded))
        except TimeoutError:
            log.error("cannot publish to redis within %.1f s: the event goes out when Redis takes it, if it does",
                      self._timeout)

    async def _send_twice(self, messages: list[str]) -> list[None]:
        for retries_left in (1, 0):
            try:
                async with asyncio.timeout(self._timeout):
                    await self._send(messages)
                break
            except Exception as exc:
                log.error("cannot publish %d event(s) to redis (%s)%s", len(messages), type(exc).__name__,
                          ", retrying" if retries_left else ", giving up")
        return [None] * len(messages)
