"""Redis client lifecycle (`Redis` is the client type the other layers name), and what a Redis outage is."""
from __future__ import annotations

import logging
import time

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_DOWN", "Redis", "RedisOutage", "connect", "ping"]

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)  # Redis unreachable or slower than its timeout
log = logging.getLogger("careline.redis")


POOL_SIZE = 100  # connections per process; a burst beyond it waits for a free one


def connect(url: str, timeout_ms: int = 2000) -> Redis:
    """Create the process-wide Redis client (decoded strings; every command and connect bounded by `timeout_ms`).

    The pool blocks: a burst needing more than POOL_SIZE connections at once waits (within `timeout_ms`) for
    one to come free, instead of failing at once with MaxConnectionsError, which redis-py derives from its
    ConnectionError and callers would take for an outage of Redis.
    """
    seconds = timeout_ms / 1000
    pool = BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=seconds, decode_responses=True,
                                           socket_timeout=seconds, socket_connect_timeout=seconds,
                                           health_check_interval=30)
    return Redis.from_pool(pool)


async def ping(client: Redis) -> None:
    """Raise unless Redis answers."""
    await client.ping()


class RedisOutage:
    """One user of Redis's view of an outage: after a failure, skip Redis for `retry_after` seconds.

    Logs one line when an outage starts and one when Redis answers again, naming `what` works without it
    meanwhile (e.g. "rate limits per process"), so a request-heavy outage does not log a line per request.
    """

    def __init__(self, what: str, retry_after: float = 1.0) -> None:
        self._what = what
        self._retry_after = retry_after
        self._until: float | None = None  # set while Redis is considered down

    @property
    def ongoing(self) -> bool:
        """Whether the last call to Redis failed."""
        return self._until is not None

    @property
    def skipping(self) -> bool:
        """Whether to do without Redis now (a failure less than `retry_after` seconds ago)."""
        return self._until is not None and time.monotonic() < self._until

    def failed(self, error: Exception) -> None:
        """Redis did not answer: skip it for a while."""
        if self._until is None:
            log.warning("%s while Redis is unavailable (%s)", self._what, type(error).__name__)
        self._until = time.monotonic() + self._retry_after

    def answered(self) -> None:
        """Redis answered: the outage (if any) is over."""
        if self._until is not None:
            log.info("%s: Redis answers again", self._what)
            self._until = None
