"""Message seq allocation per conversation, without a database write per message.

A seq is taken from a counter (in memory for one process, a Redis key shared by every process
when REDIS_URL is set) and the message is then inserted; the unique (conversationId, seq) index
is the final word. A counter that is missing (first use, Redis restarted or evicted it) is seeded
from the highest stored seq, so it only ever moves forward past what is stored, and an insert that
still collides (a seed raced an in-flight message) re-seeds above it and takes a new seq.
Counters only increase, so seqs are strictly increasing and never reused; a send that fails after
taking a seq leaves a gap that no later message fills.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from stores.chat.conversations import ConversationStore
from stores.chat.messages import MessageStore
from stores.redis import REDIS_DOWN, Redis, RedisOutage

Seed = Callable[[str], Awaitable[int]]  # the highest stored seq of a conversation

LOCAL_COUNTERS = 100_000  # conversations whose counter one process keeps (re-seeded after eviction)
REDIS_TTL_SECONDS = 7 * 24 * 3600  # an idle conversation's counter expires and is re-seeded on next use

# INCR the counter if it exists; nil tells the caller to seed it.
_NEXT = "if redis.call('EXISTS', KEYS[1]) == 1 then " \
        "redis.call('PEXPIRE', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[1]) end return false"
# Raise the counter to at least ARGV[2] (the stored maximum); then INCR when ARGV[3] is 1.
_RAISE = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') " \
         "if c < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) end " \
         "redis.call('PEXPIRE', KEYS[1], ARGV[1]) " \
         "if ARGV[3] == '1' then return redis.call('INCR', KEYS[1]) end return 0"


class SeqAllocator(Protocol):
    """Hands out the next seq of a conversation."""

    async def next_seq(self, conversation_id: str) -> int:
        """A seq greater than every seq handed out or stored before."""

    async def reseed(self, conversation_id: str) -> None:
        """The last seq collided with a stored message: catch up with what is stored."""


class LocalSeqAllocator:
    """Counters in this process (the single-process deployment, where it is the only writer)."""

    def __init__(self, seed: Seed, capacity: int = LOCAL_COUNTERS) -> None:
        self._seed = seed
        self._capacity = capacity
        self._last: OrderedDict[str, int] = OrderedDict()
        self._seeding: dict[str, asyncio.Future[int]] = {}

    async def next_seq(self, conversation_id: str) -> int:
        if conversation_id not in self._last:
            await self._load(conversation_id)
        seq = self._last[conversation_id] = self._last[conversation_id] + 1
        self._last.move_to_end(conversation_id)
        return seq

    async def reseed(self, conversation_id: str) -> None:
        await self._load(conversation_id)

    async def _load(self, conversation_id: str) -> None:
        """Seed once even when many sends arrive together; keep the higher of counter and store."""
        pending = self._seeding.get(conversation_id)
        if pending is None:
            pending = self._seeding[conversation_id] = asyncio.ensure_future(self._seed(conversation_id))
            pending.add_done_callback(lambda _: self._seeding.pop(conversation_id, None))
        stored = await asyncio.shield(pending)
        self._last[conversation_id] = max(self._last.get(conversation_id, 0), stored)
        while len(self._last) > self._capacity:
            self._last.popitem(last=False)


class RedisSeqAllocator:
    """Counters in Redis (`<prefix>seq:<conversationId>`), atomic across every process."""

    def __init__(self, redis: Any, prefix: str, seed: Seed) -> None:
        self._redis = redis
        self._prefix = prefix
        self._seed = seed
        self._next = redis.register_script(_NEXT)
        self._raise = redis.register_script(_RAISE)
        self._ttl_ms = REDIS_TTL_SECONDS * 1000

    def _key(self, conversation_id: str) -> str:
        return f"{self._prefix}seq:{conversation_id}"

    async def next_seq(self, conversation_id: str) -> int:
        seq = await self._next(keys=[self._key(conversation_id)], args=[self._ttl_ms])
        if seq is None:
            seq = await self._raise_to_stored(conversation_id, then_next=True)
        return int(seq)

    async def reseed(self, conversation_id: str) -> None:
        await self._raise_to_stored(conversation_id, then_next=False)

    async def _raise_to_stored(self, conversation_id: str, then_next: bool) -> int:
        stored = await self._seed(conversation_id)
        return int(await self._raise(keys=[self._key(conversation_id)],
                                     args=[self._ttl_ms, stored, "1" if then_next else "0"]))


class SharedSeqAllocator:
    """Redis counters, and this process's own while Redis is down or too slow (so chat keeps writing).

    Local counters are seeded from the store when an outage starts; two processes may then hand out the
    same seq, and the unique (conversationId, seq) index refuses the second insert, whose sender re-seeds
    and takes the next one. When Redis answers again its counters may be behind the store: the first
    colliding insert raises them (`reseed`). Redis is asked again a second after each failure.
    """

    def __init__(self, shared: RedisSeqAllocator, seed: Seed) -> None:
        self._shared = shared
        self._seed = seed
        self._local = LocalSeqAllocator(seed)  # re-seeded from the store at the start of each outage
        self._outage = RedisOutage("chat seqs from this process")

    def _fallback(self, error: Exception) -> LocalSeqAllocator:
        if not self._outage.ongoing:
            self._local = LocalSeqAllocator(self._seed)
        self._outage.failed(error)
        return self._local

    async def next_seq(self, conversation_id: str) -> int:
        """The next seq from Redis, else from this process's counter."""
        if self._outage.skipping:
            return await self._local.next_seq(conversation_id)
        try:
            seq = await self._shared.next_seq(conversation_id)
        except REDIS_DOWN as error:
            return await self._fallback(error).next_seq(conversation_id)
        self._outage.answered()
        return seq

    async def reseed(self, conversation_id: str) -> None:
        """Catch the counter in use up with the store."""
        if self._outage.ongoing:
            await self._local.reseed(conversation_id)
            return
        try:
            await self._shared.reseed(conversation_id)
        except REDIS_DOWN as error:
            await self._fallback(error).reseed(conversation_id)


def seq_allocator(redis: Redis | None, prefix: str, conversations: ConversationStore,
                  messages: MessageStore) -> SeqAllocator:
    """Counters in Redis when processes share it, else in this process; seeded from the stored maximum."""
    async def stored_max(conversation_id: str) -> int:
        return await messages.max_seq(conversation_id, await conversations.stored_last_seq(conversation_id))

    if redis is not None:
        return SharedSeqAllocator(RedisSeqAllocator(redis, prefix, stored_max), stored_max)
    return LocalSeqAllocator(stored_max)
