"""Which seats are admitted, mirrored in Redis (or memory) so a `signal` is checked without a database read.

The database stays the truth; the mirror may only ever miss. Each seat carries a `version` that every
state change increments. A seat becomes `admitted@v` in the mirror after the database took that change; a
change away from admitted writes `revoked@v` *before* the database write. A write never replaces a higher
version, and at equal versions `revoked` wins, so a late `admitted` cannot cover a kick. Anything but
`admitted` for both ends of a signal (including a missing entry or Redis being down) means: ask the database.

In front of the shared mirror each process may keep the seats it found admitted for a bounded time
(`HeldSeatMirror`, MEETING_SEAT_HOLD_MS), so a signal trickle does not read Redis per signal. A
revocation is then in force everywhere only once that time has passed: whoever revokes waits for
`settled(meeting)` before acknowledging.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from stores.meetings.revocations import Revocations
from stores.redis import REDIS_DOWN, Redis
from stores.redis_batch import RedisBatch

log = logging.getLogger("careline.meetings")
TTL_SECONDS = 12 * 3600  # a meeting's mirror outlives any meeting; missing entries are read from the database

_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = tonumber(ARGV[2])
if current then
  local sep = string.find(current, ':')
  local kind, seen = string.sub(current, 1, sep - 1), tonumber(string.sub(current, sep + 1))
  if seen > version or (seen == version and (kind == 'r' or ARGV[3] == 'a')) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class SeatMirror(Protocol):
    """Admitted seats by meeting, version-guarded."""

    async def admitted(self, meeting_id: str, version: int, user_id: str) -> None:
        """The database admitted the seat at `version` (best effort: a failure only costs a read later)."""

    async def revoke(self, meeting_id: str, version: int, user_id: str) -> None:
        """The seat is about to stop being admitted at `version` (raises when that cannot be recorded)."""

    async def both_admitted(self, meeting_id: str, first: str, second: str) -> bool:
        """True only when both seats are known admitted (False: ask the database)."""

    async def settled(self, meeting_id: str) -> None:
        """Return once every revocation this process made in the meeting is in force on every process."""


def _newer(current: tuple[str, int] | None, kind: str, version: int) -> bool:
    if current is None:
        return True
    seen_kind, seen = current
    return not (seen > version or (seen == version and (seen_kind == "r" or kind == "a")))


class MemorySeatMirror:
    """The mirror of a single process."""

    def __init__(self) -> None:
        self._seats: dict[tuple[str, str], tuple[str, int]] = {}
        self._touched: dict[str, float] = {}

    def _set(self, meeting_id: str, user_id: str, kind: str, version: int) -> None:
        if _newer(self._seats.get((meeting_id, user_id)), kind, version):
            self._seats[(meeting_id, user_id)] = (kind, version)
        self._touched[meeting_id] = time.monotonic()
        self._forget_old()

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - TTL_SECONDS
        for meeting_id in [m for m, at in self._touched.items() if at < cutoff]:
            del self._touched[meeting_id]
            for key in [k for k in self._seats if k[0] == meeting_id]:
                del self._seats[key]

    async def admitted(self, meeting_id: str, version: int, user_id: str) -> None:
        """The database admitted the seat at `version`."""
        self._set(meeting_id, user_id, "a", version)

    async def revoke(self, meeting_id: str, version: int, user_id: str) -> None:
        """The seat stops being admitted at `version`."""
        self._set(meeting_id, user_id, "r", version)

    async def both_admitted(self, meeting_id: str, first: str, second: str) -> bool:
        """True when both seats are known admitted."""
        return all(self._seats.get((meeting_id, uid), ("", 0))[0] == "a" for uid in (first, second))

    async def settled(self, meeting_id: str) -> None:
        """Revocations are in force as soon as they are written."""


class RedisSeatMirror:
    """The mirror every process shares."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix + "seats:"
        self._script = redis.register_script(_SET_IF_NEWER)
        self._batch = RedisBatch(redis)  # the signal check's reads, pipelined

    async def _set(self, meeting_id: str, user_id: str, kind: str, version: int) -> None:
        await self._script(keys=[self._prefix + meeting_id], args=[user_id, version, kind, TTL_SECONDS])

    async def admitted(self, meeting_id: str, version: int, user_id: str) -> None:
        """The database admitted the seat at `version` (a failure is logged: signals then read the database)."""
        try:
            await self._set(meeting_id, user_id, "a", version)
        except REDIS_DOWN as error:
            log.warning("seat mirror not updated: %s", type(error).__name__)

    async def revoke(self, meeting_id: str, version: int, user_id: str) -> None:
        """The seat stops being admitted at `version`; raises while Redis is down (nothing is changed then)."""
        await self._set(meeting_id, user_id, "r", version)

    async def both_admitted(self, meeting_id: str, first: str, second: str) -> bool:
        """True when both seats are known admitted; False on any doubt (Redis down included)."""
        try:
            states = await self._batch.call("HMGET", self._prefix + meeting_id, first, second)
        except REDIS_DOWN:
            return False
        return all(isinstance(state, str) and state.startswith("a:") for state in states)

    async def settled(self, meeting_id: str) -> None:
        """Every process reads this mirror directly: revocations are in force as soon as they are written."""


class HeldSeatMirror:
    """A shared mirror with this process's short-lived memory of the seats it found admitted there.

    A seat read as admitted is trusted for `hold_seconds` from the moment the read was sent (never
    longer, whatever the scheduling), only admitted answers are kept (an admission or a refusal is
    seen at once), and this process's own revocations drop its entries at once. Another process may
    still trust a revoked seat until its entry runs out, which is at most `hold_seconds` after the
    revocation was written. With `revocations` (stores/meetings/revocations.py) every process is told
    at once and answers once it dropped the seat: `settled(meeting)` returns when all have answered, and
    waits out the rest of that time only when some did not (without the channel, always). Seats are held only
    while the channel is up, and a read sent before a revocation of its meeting arrived here (or before the
    channel last came back) is not held.
    """

    _PRUNE_AT = 20_000

    def __init__(self, shared: SeatMirror, hold_seconds: float, revocations: Revocations | None = None) -> None:
        self._shared = shared
        self._hold = hold_seconds
        self._revocations = revocations
        # (meeting, user) -> (trusted until (monotonic), the revocation channel's epoch it was read in)
        self._until: dict[tuple[str, str], tuple[float, int]] = {}
        # meeting -> this process's revocations not yet in force everywhere: (hold runs out, answers awaited)
        self._pending: dict[str, list[tuple[float, asyncio.Future[None] | None]]] = {}
        self._revoked_at: dict[str, float] = {}  # meeting -> when another process's revocation arrived here
        if revocations is not None:
            revocations.start(self._dropped)

    async def admitted(self, meeting_id: str, version: int, user_id: str) -> None:
        """The database admitted the seat at `version` (written to the shared mirror only)."""
        await self._shared.admitted(meeting_id, version, user_id)

    async def revoke(self, meeting_id: str, version: int, user_id: str) -> None:
        """Forget the seat here, record the revocation in the shared mirror, tell the other processes (with a
        channel) and start the wait for `settled`."""
        self._until.pop((meeting_id, user_id), None)
        await self._shared.revoke(meeting_id, version, user_id)
        self._until.pop((meeting_id, user_id), None)  # a read that was under way meanwhile
        runs_out = time.monotonic() + self._hold
        answers = await self._revocations.announce(meeting_id, user_id) if self._revocations is not None else None
        self._prune()
        self._pending.setdefault(meeting_id, []).append((runs_out, answers))

    def _prune(self) -> None:
        if len(self._pending) < self._PRUNE_AT:
            return
        now = time.monotonic()
        for meeting_id in list(self._pending):
            self._in_force(meeting_id, now)
        self._revoked_at = {meeting: at for meeting, at in self._revoked_at.items() if at > now - self._hold}

    def _in_force(self, meeting_id: str, now: float) -> list[tuple[float, asyncio.Future[None] | None]]:
        """The meeting's revocations still to wait for (the others forgotten)."""
        left = [(runs_out, answers) for runs_out, answers in self._pending.get(meeting_id, ())
                if runs_out > now and (answers is None or not answers.done())]
        for runs_out, answers in self._pending.get(meeting_id, ()):
            if runs_out <= now and answers is not None:
                answers.cancel()
        if left:
            self._pending[meeting_id] = left
        else:
            self._pending.pop(meeting_id, None)
        return left

    def _dropped(self, meeting_id: str, user_id: str) -> None:
        """Another process revoked the seat: forget it here, and hold nothing read of the meeting before now."""
        self._until.pop((meeting_id, user_id), None)
        self._revoked_at[meeting_id] = time.monotonic()

    async def both_admitted(self, meeting_id: str, first: str, second: str) -> bool:
        """From memory while both entries are fresh, else from the shared mirror (kept when admitted)."""
        now = time.monotonic()
        keys = ((meeting_id, first), (meeting_id, second))
        epoch = self._epoch()
        if epoch is not None and all(self._held(key, now, epoch) for key in keys):
            return True
        if not await self._shared.both_admitted(meeting_id, first, second):
            return False
        if epoch is None or epoch != self._epoch() or self._revoked_at.get(meeting_id, -1.0) >= now:
            return True  # admitted, but not to be held: a revocation may have been missed, or came meanwhile
        if len(self._until) >= self._PRUNE_AT:
            self._until = {key: held for key, held in self._until.items() if held[0] > now}
        for key in keys:
            self._until[key] = (now + self._hold, epoch)
        return True

    def _held(self, key: tuple[str, str], now: float, epoch: int) -> bool:
        until, held_in = self._until.get(key, (0.0, -1))
        return until > now and held_in == epoch

    def _epoch(self) -> int | None:
        """The revocation channel's generation (0 without a channel); None while it is down."""
        return 0 if self._revocations is None else self._revocations.epoch

    async def settled(self, meeting_id: str) -> None:
        """Wait until no process can still trust a seat of the meeting this process revoked: each revocation
        answered by every process, or its hold run out."""
        now = time.monotonic()
        await asyncio.gather(*(_answered_or_out(answers, runs_out - now)
                               for runs_out, answers in self._in_force(meeting_id, now)))


async def _answered_or_out(answers: asyncio.Future[None] | None, left: float) -> None:
    if answers is None:
        await asyncio.sleep(left)
        return
    await asyncio.wait((answers,), timeout=left)
    if not answers.done():
        log.warning("a process did not answer a seat revocation in time: its hold was waited out")
