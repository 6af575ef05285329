"""Which users have live sockets, per group (a user, a room), across every process.

Each process registers a heartbeat key; socket entries name their process, so the
sockets of a crashed process stop counting once its heartbeat expires (and a
periodic sweep deletes them).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from stores.coalesce import Coalescer
from stores.redis import REDIS_DOWN, Redis, RedisOutage

HEARTBEAT_SECONDS = 10

PROCESS_TTL_SECONDS = 30


class SocketRegistry(Protocol):
    """Live sockets per group; `group` is e.g. `user:<id>` or `room:/chat:conv:<id>`."""

    async def add(self, group: str, sid: str, user_id: str) -> int:
        """Register a socket; returns how many live sockets the user now has in the group."""

    async def remove(self, group: str, sid: str, user_id: str) -> int:
        """Forget a socket; returns how many live sockets the user still has in the group."""

    async def users(self, group: str) -> set[str]:
        """Users with at least one live socket in the group."""

    async def any_live(self, groups: Iterable[str]) -> dict[str, bool]:
        """For each group, whether it has at least one live socket."""

    async def heartbeat(self) -> None:
        """Keep this process's entries alive and sweep dead processes' entries."""

    async def close(self) -> None:
        """Remove this process's entries (graceful shutdown)."""


class MemorySocketRegistry:
    """One process: group -> user -> sids (counting a user's sockets never scans the group)."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, set[str]]] = defaultdict(dict)

    async def add(self, group: str, sid: str, user_id: str) -> int:
        """Register a socket."""
        sids = self._groups[group].setdefault(user_id, set())
        sids.add(sid)
        return len(sids)

    async def remove(self, group: str, sid: str, user_id: str) -> int:
        """Forget a socket."""
        users = self._groups.get(group)
        if users is None:
            return 0
        owner = user_id if sid in users.get(user_id, ()) else next((u for u, s in users.items() if sid in s), None)
        if owner is not None:
            users[owner].discard(sid)
            if not users[owner]:
                del users[owner]
        if not users:
            del self._groups[group]
        return len(users.get(user_id, ()))

    async def users(self, group: str) -> set[str]:
        """Users with a live socket in the group."""
        return set(self._groups.get(group, {}))

    async def any_live(self, groups: Iterable[str]) -> dict[str, bool]:
        """Whether each group has a live socket."""
        return {group: bool(self._groups.get(group)) for group in groups}

    async def heartbeat(self) -> None:
        """Nothing to keep alive in one process."""

    async def close(self) -> None:
        """Forget everything."""
        self._groups.clear()


#: one registry operation: (Redis command or "" for a read, hash key, sid, value); answered by the hash after it
Op = tuple[str, str, str, str]


class RedisSocketRegistry:
    """Many processes: one Redis hash per group, `sid -> user|process`.

    The registrations, removals and reads of a connect (or disconnect) storm go out as one pipeline per
    batch (`Coalescer`), each followed by a read of its hash, so every caller still gets its own count.

    While Redis is down or too slow the registry degrades instead of failing the request that asked: a
    socket it could not record counts as the user's first (presence may announce `online` twice), and
    reads answer "nobody live" (a message notifies members who may in fact be watching). Heartbeats
    fail as usual, so the heartbeat job backs off and logs it.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "sockets:"
        self._procs = prefix + "procs"
        self.process_id = uuid.uuid4().hex
        self._live_cache: tuple[float, set[str]] = (0.0, set())
        self._live_read: asyncio.Future[set[str]] | None = None
        self._first_beat: asyncio.Future[None] | None = None
        self._outage = RedisOutage("live-socket registry answering without Redis")
        self._ops: Coalescer[Op, dict[bytes | str, bytes | str]] = Coalescer(self._run_ops)

    def _key(self, group: str) -> str:
        return self._prefix + group

    async def add(self, group: str, sid: str, user_id: str) -> int:
        """Register a socket."""
        try:
            await self._registered()
            members = await self._members(group, ("hset", sid, f"{user_id}|{self.process_id}"))
            return sum(1 for user in members.values() if user == user_id)
        except REDIS_DOWN as error:
            self._outage.failed(error)
            return 1

    async def _registered(self) -> None:
        """Beat once before the first entry (others count this process's entries once it has beaten)."""
        beat: asyncio.Future[None] | None = self._first_beat
        if beat is None or (beat.done() and (beat.cancelled() or beat.exception() is not None)):
            beat = self._first_beat = asyncio.ensure_future(self.heartbeat())
        await asyncio.shield(beat)

    async def remove(self, group: str, sid: str, user_id: str) -> int:
        """Forget a socket."""
        try:
            members = await self._members(group, ("hdel", sid, ""))
            return sum(1 for user in members.values() if user == user_id)
        except REDIS_DOWN as error:
            self._outage.failed(error)
            return 0

    async def users(self, group: str) -> set[str]:
        """Users with a live socket in the group."""
        try:
            return set((await self._members(group)).values())
        except REDIS_DOWN as error:
            self._outage.failed(error)
            return set()

    async def any_live(self, groups: Iterable[str]) -> dict[str, bool]:
        """Whether each group has a live socket (one round trip for all groups)."""
        groups = list(groups)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for group in groups:
                    pipe.hvals(self._key(group))
                results = await pipe.execute()
            live = await self._live_processes()
        except REDIS_DOWN as error:
            self._outage.failed(error)
            return dict.fromkeys(groups, False)
        return {group: any(_process_of(value) in live for value in values)
                for group, values in zip(groups, results, strict=True)}

    async def _members(self, group: str, change: tuple[str, str, str] = ("", "", "")) -> dict[str, str]:
        """The group's live members (sid -> user) after `change` (a command, sid and value; none by default)."""
        command, sid, value = change
        entries = await self._ops.submit((command, self._key(group), sid, value))
        live = await self._live_processes()
        members = {}
        for entry_sid, entry in entries.items():
            user_id, _, process = _text(entry).rpartition("|")
            if process in live:
                members[_text(entry_sid)] = user_id
        return members

    async def _run_ops(self, ops: list[Op]) -> list[dict[bytes | str, bytes | str]]:
        """One pipeline: each operation, then a read of its hash."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for command, key, sid, value in ops:
                if command == "hset":
                    pipe.hset(key, sid, value)
                elif command == "hdel":
                    pipe.hdel(key, sid)
                pipe.hgetall(key)
            results = await pipe.execute()
        hashes = iter(results)
        return [next(hashes) if not command else (next(hashes), next(hashes))[1] for command, *_ in ops]

    async def _live_processes(self) -> set[str]:
        stamp, live = self._live_cache
        if time.monotonic() - stamp < 1.0 and live:
            return live
        if self._live_read is None:  # one read however many callers found the cache stale
            self._live_read = asyncio.ensure_future(self._read_live())
        return await asyncio.shield(self._live_read)

    async def _read_live(self) -> set[str]:
        try:
            return await self._read_live_processes()
        finally:
            self._live_read = None

    async def _read_live_processes(self) -> set[str]:
        cutoff = time.time() - PROCESS_TTL_SECONDS
        live = {_text(process) for process in await self._redis.zrangebyscore(self._procs, cutoff, "+inf")}
        live.add(self.process_id)
        self._live_cache = (time.monotonic(), live)
        return live

    async def heartbeat(self) -> None:
        """Mark this process alive; delete entries of processes that stopped beating."""
        now = time.time()
        await self._redis.zadd(self._procs, {self.process_id: now})
        self._outage.answered()
        dead = await self._redis.zrangebyscore(self._procs, "-inf", now - PROCESS_TTL_SECONDS)
        if dead:
            await self._sweep({_text(process) for process in dead})
            await self._redis.zrem(self._procs, *dead)
        self._live_cache = (0.0, set())

    async def _sweep(self, processes: set[str]) -> None:
        async for key in self._redis.scan_iter(match=self._prefix + "*", count=500):
            entries = await self._redis.hgetall(key)
            stale = [sid for sid, value in entries.items() if _process_of(value) in processes]
            if stale:
                await self._redis.hdel(key, *stale)

    async def close(self) -> None:
        """Remove this process's entries and heartbeat."""
        await self._sweep({self.process_id})
        await self._redis.zrem(self._procs, self.process_id)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _process_of(entry: object) -> str:
    """The process of a `user|process` entry."""
    return _text(entry).rpartition("|")[2]


