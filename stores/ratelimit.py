"""Token-bucket rate limits per key: in Redis (shared by all processes) or in memory (one process)."""
from __future__ import annotations

import math
import time
from typing import Protocol

from stores.redis import REDIS_DOWN, Redis, RedisOutage

_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or capacity
local ts = tonumber(data[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local retry = 0
if tokens >= 1 then tokens = tokens - 1 else retry = math.ceil((1 - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return retry
"""


class RateLimiter(Protocol):
    """Takes one token from the bucket `key`; returns 0 when allowed, else milliseconds to wait."""

    async def take(self, key: str, burst: int, per_second: float) -> int: ...


class RedisRateLimiter:
    """Buckets kept in Redis, so every process sees the same counts.

    While Redis is down or too slow the limits stay on, per process (each process its own buckets, so
    a user may get up to one burst per process): failing open would let a flooder through exactly when
    the platform is weakest, failing closed would refuse every request for an outage of a cache. Redis
    is asked again a second after each failure.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix + "rl:"
        self._script = redis.register_script(_TOKEN_BUCKET)
        self._local = MemoryRateLimiter()
        self._outage = RedisOutage("rate limits per process")

    async def take(self, key: str, burst: int, per_second: float) -> int:
        """Take a token; 0 when allowed, else the wait in milliseconds."""
        if self._outage.skipping:
            return await self._local.take(key, burst, per_second)
        try:
            wait = int(await self._script(keys=[self._prefix + key], args=[burst, per_second / 1000.0]))
        except REDIS_DOWN as error:
            self._outage.failed(error)
            return await self._local.take(key, burst, per_second)
        self._outage.answered()
        return wait


class MemoryRateLimiter:
    """Buckets in this process only (the single-process default)."""

    _PRUNE_AT = 50_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, burst: int, per_second: float) -> int:
        """Take a token; 0 when allowed, else the wait in milliseconds."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * per_second)
        if tokens >= 1:
            self._store(key, tokens - 1, now, burst / per_second)
            return 0
        self._store(key, tokens, now, burst / per_second)
        return max(1, math.ceil((1 - tokens) / per_second * 1000))

    def _store(self, key: str, tokens: float, now: float, refill_seconds: float) -> None:
        if len(self._buckets) >= self._PRUNE_AT:
            # Buckets idle long enough to be full again carry no information.
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill_seconds}
        self._buckets[key] = (tokens, now)
