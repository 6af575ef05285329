"""Hot-path Redis commands in batches: the commands issued while one batch is on the wire go out together in
the next, as one pipeline (one connection, one write, one round trip), in the order they were issued."""
from __future__ import annotations

from typing import Any

from stores.coalesce import Coalescer
from stores.redis import Redis

MAX_BATCH = 256
Command = tuple[Any, ...]


class RedisBatch:
    """Queues commands and runs them in pipelines (a `Coalescer` whose flush is one pipeline).

    Under load a request's command costs a share of one round trip instead of a pool connection and a round
    trip of its own, and a burst of requests cannot empty the connection pool. Each caller gets its own
    command's reply or error; an error of the whole batch (connection lost, timeout) is every caller's error.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._batches: Coalescer[Command, Any] = Coalescer(self._pipeline, max_batch=MAX_BATCH)

    async def call(self, *command: Any) -> Any:
        """Run one command (`"HMGET", key, field, ...`) with the next batch; its reply, or raise its error."""
        return await self._batches.submit(command)

    async def _pipeline(self, commands: list[Command]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies
