"""Seat revocations told to every process at once (Redis pub/sub), so whoever revokes need not wait out the holds.

A process that revokes a seat publishes `revoked`; every other process listening drops its hold of that seat,
stops trusting reads of the meeting's seats sent before then, and answers `dropped`. The revoker waits for as
many answers as Redis counted listeners (PUBLISH's reply; its own message coming back answers for itself), never
longer than the hold itself: a process that does not answer in time has let its holds run out by then anyway.
A process holds seats only while its own subscription is up: each hold belongs to the subscription's `epoch`,
which changes when it drops (every hold is void at once: revocations may be missed meanwhile) and when it comes
back (no read sent before then is held).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

import orjson

from stores.redis import REDIS_DOWN, Redis
from stores.redis_listener import ChannelListener

log = logging.getLogger("careline.meetings")

Dropped = Callable[[str, str], None]  # (meeting, user): forget the hold and distrust earlier reads


class Revocations(Protocol):
    """Tells the other processes of a revoked seat and hears of theirs."""

    @property
    def epoch(self) -> int | None:
        """Changes whenever the subscription drops or comes back; None while it is down (hold nothing then)."""

    async def announce(self, meeting_id: str, user_id: str) -> asyncio.Future[None] | None:
        """Tell every other process; a future done once each has dropped the seat (None: unknown who listens)."""

    def start(self, dropped: Dropped) -> None:
        """Begin calling `dropped` for the other processes' revocations."""

    async def close(self) -> None:
        """Stop listening."""


class _Answers:
    """The `dropped` answers of one announcement (its own message coming back counts: proof of a live listener)."""

    def __init__(self) -> None:
        self.expected: int | None = None  # known once PUBLISH answered
        self.count = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def answered(self) -> None:
        self.count += 1
        self._check()

    def expect(self, listeners: int) -> None:
        self.expected = listeners
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.count >= self.expected and not self.done.done():
            self.done.set_result(None)


class RedisRevocations:
    """One pub/sub channel per deployment prefix; a process ignores its own messages."""

    def __init__(self, redis: Redis, prefix: str, url: str | None = None) -> None:
        self._redis = redis
        self._channel = f"{prefix}meetings:revoked"
        self._origin = uuid.uuid4().hex
        self._epoch = 0
        self._up = False
        self._waiting: dict[str, _Answers] = {}  # announcement nonce -> answers still expected
        self._listener = ChannelListener(redis, self._channel, "seat revocation listener", log, url)
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def epoch(self) -> int | None:
        """The subscription's generation while it is up, None while it is down."""
        return self._epoch if self._up else None

    async def announce(self, meeting_id: str, user_id: str) -> asyncio.Future[None] | None:
        """Publish the revocation; a future done once every listener answered: each other process, and this one
        by receiving its own message (so a subscription of ours that died unnoticed cannot make the count short)."""
        nonce = uuid.uuid4().hex
        answers = self._waiting[nonce] = _Answers()
        answers.done.add_done_callback(lambda _: self._waiting.pop(nonce, None))
        try:
            listeners = await self._redis.publish(self._channel, self._message("revoked", nonce, meeting_id, user_id))
        except REDIS_DOWN as error:
            answers.done.cancel()
            log.warning("seat revocation not broadcast: %s", type(error).__name__)
            return None
        answers.expect(int(listeners))
        return answers.done

    def _message(self, kind: str, nonce: str, meeting_id: str = "", user_id: str = "") -> bytes:
        return orjson.dumps([self._origin, kind, nonce, meeting_id, user_id])

    def start(self, dropped: Dropped) -> None:
        """Listen in the background (reconnecting after an outage)."""
        async def received(data: bytes) -> None:
            self._received(dropped, *orjson.loads(data))

        self._listener.start(received, self._subscription)

    def _subscription(self, up: bool) -> None:
        self._epoch += 1
        self._up = up

    def _received(self, dropped: Dropped, origin: str, kind: str, nonce: str, meeting_id: str, user_id: str) -> None:
        if kind == "revoked" and origin != self._origin:
            dropped(meeting_id, user_id)
            self._answer(nonce)
            return
        answers = self._waiting.get(nonce)  # an answer, or our own revocation back
        if answers is not None:
            answers.answered()

    def _answer(self, nonce: str) -> None:
        task = asyncio.create_task(self._publish_answer(nonce))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _publish_answer(self, nonce: str) -> None:
        try:
            await self._redis.publish(self._channel, self._message("dropped", nonce))
        except REDIS_DOWN as error:  # the revoker then waits out its hold
            log.warning("seat revocation not answered: %s", type(error).__name__)

    async def close(self) -> None:
        """Stop listening."""
        await self._listener.close()
