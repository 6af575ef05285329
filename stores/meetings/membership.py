"""Who hosts a meeting and who is invited: fields no write ever changes, so every process may keep them.

A guest's join checks membership before anything is written (a stranger must never get a seat); with the
membership known, the join creates its lobby seat while the meeting itself (status, times: those are only ever
read from the database) is being read, instead of after. Memberships are kept in this process's memory and, with
Redis, shared under `<prefix>meeting-members:<id>` so a process that never read the meeting knows it too. A
membership that is not found anywhere (or Redis down) only means: read the meeting first.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from stores.redis import REDIS_DOWN, Redis
from stores.redis_batch import RedisBatch

log = logging.getLogger("careline.meetings")
KEPT = 20_000  # memberships a process keeps in memory (the oldest forgotten first)
SHARED_TTL_SECONDS = 14 * 24 * 3600  # a missing entry is read from the database


@dataclass(frozen=True)
class Membership:
    """A meeting's host, invited participants and booking (None: ad hoc)."""

    id: str
    host_id: str
    participant_ids: tuple[str, ...]
    booking_id: str | None

    def invited(self, user_id: str) -> bool:
        """True for the host and the invited participants."""
        return user_id == self.host_id or user_id in self.participant_ids


class Memberships:
    """Memberships known here (and, with `redis`, to every process)."""

    def __init__(self, redis: Redis | None = None, prefix: str = "") -> None:
        self._kept: dict[str, Membership] = {}
        self._redis = redis
        self._batch = RedisBatch(redis) if redis is not None else None
        self._prefix = prefix + "meeting-members:"

    async def get(self, meeting_id: str) -> Membership | None:
        """The membership, from memory or Redis; None when neither knows it."""
        known = self._kept.get(meeting_id)
        if known is not None or self._batch is None:
            return known
        try:
            value = await self._batch.call("GET", self._prefix + meeting_id)
        except REDIS_DOWN:
            return None
        if not isinstance(value, (str, bytes)):
            return None
        host_id, participant_ids, booking_id = orjson.loads(value)
        return self._keep(Membership(meeting_id, host_id, tuple(participant_ids), booking_id))

    async def add(self, membership: Membership) -> None:
        """Remember a membership read from the database (shared once per process, best effort)."""
        if membership.id in self._kept:
            return
        self._keep(membership)
        if self._redis is None:
            return
        value = orjson.dumps([membership.host_id, list(membership.participant_ids), membership.booking_id])
        try:
            await self._redis.set(self._prefix + membership.id, value, ex=SHARED_TTL_SECONDS)
        except REDIS_DOWN as error:
            log.warning("meeting membership not shared: %s", type(error).__name__)

    def _keep(self, membership: Membership) -> Membership:
        if len(self._kept) >= KEPT:
            del self._kept[next(iter(self._kept))]
        self._kept[membership.id] = membership
        return membership
