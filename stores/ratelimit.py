"""Token-bucket rate limits per key: in Redis (shared by all processes) or in memory (one process)."""
from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

from redis.exceptions import NoScriptError

from stores.redis import REDIS_DOWN, Redis, RedisOutage
from stores.redis_batch import RedisBatch

#: takes up to ARGV[3] whole tokens at once (a lease); returns {tokens granted, ms to wait when none}
_LEASE_TOKENS = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or capacity
local ts = tonumber(data[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local granted = math.min(wanted, math.floor(tokens))
local retry = 0
if granted >= 1 then tokens = tokens - granted else granted = 0; retry = math.ceil((1 - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return {granted, retry}
"""

#: share of a bucket's burst one process leases at a time (bursts under 1/LEASE_SHARE lease one token: exact)
LEASE_SHARE = 0.1
#: leased tokens not used within this many seconds are dropped (never given back: the limit only gets stricter)
LEASE_SECONDS = 5.0


def lease_size(burst: int) -> int:
    """How many tokens a process takes from the shared bucket at once."""
    return max(1, int(burst * LEASE_SHARE))


class RateLimiter(Protocol):
    """Takes one token from the bucket `key`; returns 0 when allowed, else milliseconds to wait."""

    async def take(self, key: str, burst: int, per_second: float) -> int: ...


class RedisRateLimiter:
    """Buckets kept in Redis, so every process sees the same counts, taken in leases.

    A request is served from tokens this process leased from the shared bucket (`lease_size`, a tenth
    of the burst) and only goes to Redis when its lease is used up or older than LEASE_SECONDS. The
    leased tokens were taken from the shared bucket, so all processes together never let a user
    exceed the configured bucket; leased tokens a process did not use in time are dropped, so a
    user may be refused up to one lease per process early (docs/storage.md, "Rate limits").
    Concurrent requests of one key share one Redis call; the calls of all keys go out in pipelined batches
    (stores/redis_batch.py).

    While Redis is down or too slow the limits stay on, per process (each process its own buckets, so
    a user may get up to one burst per process): failing open would let a flooder through exactly when
    the platform is weakest, failing closed would refuse every request for an outage of a cache. Redis
    is asked again a second after each failure.
    """

    _PRUNE_AT = 50_000

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix + "rl:"
        self._script = redis.register_script(_LEASE_TOKENS)
        self._batch = RedisBatch(redis)
        self._local = MemoryRateLimiter()
        self._outage = RedisOutage("rate limits per process")
        self._leases: dict[str, tuple[int, float]] = {}  # key -> (tokens left, usable until (monotonic))
        self._leasing: dict[str, asyncio.Future[int]] = {}  # key -> the Redis call under way

    async def take(self, key: str, burst: int, per_second: float) -> int:
        """Take a token; 0 when allowed, else the wait in milliseconds."""
        while True:
            if self._outage.skipping:
                return await self._local.take(key, burst, per_second)
            left, until = self._leases.get(key, (0, 0.0))
            if left > 0 and time.monotonic() < until:
                self._leases[key] = (left - 1, until)
                return 0
            pending = self._leasing.get(key)
            if pending is None:
                return await self._lease(key, burst, per_second)
            if await asyncio.shield(pending):
                return pending.result()  # refused: every waiter gets the same wait

    async def _lease(self, key: str, burst: int, per_second: float) -> int:
        """Lease tokens for `key` (one of them for this request): 0, or the wait when none is left."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._leasing[key] = done
        wait = 0
        try:
            issued = time.monotonic()
            args = (burst, per_second / 1000.0, lease_size(burst))
            try:
                try:
                    granted, wait = await self._batch.call("EVALSHA", self._script.sha, 1, self._prefix + key, *args)
                except NoScriptError:  # Redis restarted without its scripts: this call loads it again
                    granted, wait = await self._script(keys=[self._prefix + key], args=args)
            except REDIS_DOWN as error:
                self._outage.failed(error)
                self._leases.pop(key, None)
                wait = await self._local.take(key, burst, per_second)
                return wait
            self._outage.answered()
            wait = int(wait)
            if int(granted) > 0:
                self._keep(key, int(granted) - 1, issued + LEASE_SECONDS)
            return wait
        finally:
            del self._leasing[key]
            done.set_result(wait)

    def _keep(self, key: str, tokens: int, until: float) -> None:
        if len(self._leases) >= self._PRUNE_AT:
            now = time.monotonic()
            self._leases = {k: v for k, v in self._leases.items() if v[1] > now and v[0] > 0}
        self._leases[key] = (tokens, until)


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
