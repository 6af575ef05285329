"""Hot-path Redis commands in batches: the commands issued while one batch is on the wire go out together in
the next, as one pipeline (one connection, one write, one round trip), in the order they were issued."""
from __future__ import annotations

import asyncio
from typing import Any

from stores.redis import Redis

MAX_BATCH = 256


class RedisBatch:
    """Queues commands and runs them in pipelines from one task.

    Under load a request's command costs a share of one round trip instead of a pool connection and a round
    trip of its own, and a burst of requests cannot empty the connection pool (redis-py refuses a command
    with `MaxConnectionsError` past 100 connections, which callers would take for Redis being down). Each
    caller gets its own command's reply or error; an error of the whole batch (connection lost, timeout)
    is every caller's error.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def call(self, *command: Any) -> Any:
        """Run one command (`"HMGET", key, field, ...`) with the next batch; its reply, or raise its error."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((command, reply))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await reply

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                pipe = self._redis.pipeline(transaction=False)
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            except Exception as error:
                replies = [error] * len(batch)
            for (_, reply), answer in zip(batch, replies, strict=True):
                if reply.done():  # its caller was cancelled
                    continue
                if isinstance(answer, BaseException):
                    reply.set_exception(answer)
                else:
                    reply.set_result(answer)
