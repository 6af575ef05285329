"""Publishing to the Redis channel in batches: every message queued while one batch is on the wire goes out
in the next, as one pipeline (one write, one connection), in the order the emits were made."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
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

    The waits are bounded by one loop timer for all of them (publishes wait in the order they were made, so
    their deadlines are in order too), not a timeout and a shield per publish (~20 µs each).
    """

    def __init__(self, send: SendBatch, timeout: float, max_batch: int = 512) -> None:
        self._send = send
        self._timeout = timeout
        self._batches: Coalescer[str, None] = Coalescer(self._send_twice, max_batch=max_batch)
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()  # (deadline, sent), oldest first
        self._timer: asyncio.TimerHandle | None = None

    async def publish(self, encoded: str) -> None:
        """Queue one message and wait (bounded) until its batch has been sent; a cancelled caller's message is
        still sent with its batch."""
        sent = self._batches.enqueue(encoded)
        waiting, loop = self._waiting, asyncio.get_running_loop()
        while waiting and waiting[0][1].done():
            waiting.popleft()
        waiting.append((loop.time() + self._timeout, sent))
        if self._timer is None:
            self._timer = loop.call_at(waiting[0][0], self._expire)
        await sent

    def _expire(self) -> None:
        """Release the publishes waiting for longer than `timeout` (their messages go out when Redis takes them)."""
        waiting, loop = self._waiting, asyncio.get_running_loop()
        now, expired = loop.time(), 0
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _, sent = waiting.popleft()
            if not sent.done():
                sent.set_result(None)
                expired += 1
        if expired:
            log.error("cannot publish %d event(s) to redis within %.1f s: they go out when Redis takes them, if it "
                      "does", expired, self._timeout)
        self._timer = loop.call_at(waiting[0][0], self._expire) if waiting else None

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
