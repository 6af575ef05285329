"""Carries document changes between processes (Redis pub/sub), so every process holding a document in memory
applies the updates the others accepted, and hears when a document was locked by a submission.

Only what other processes need to stay convergent travels here; it is not a durable channel (the update log
is): a process that missed a message still merges the stored document whenever the document is opened.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson

from stores.redis import REDIS_DOWN, Redis

log = logging.getLogger("careline.worksheets")

Receiver = Callable[[str, str, bytes], Awaitable[None]]  # (assignment id, kind, update)


class DocRelay(Protocol):
    """Publishes a document change to the other processes and hands theirs to a receiver."""

    async def publish(self, assignment_id: str, kind: str, update: bytes = b"") -> None:
        """Tell the other processes (kind "update": a Yjs update; "lock": the document was submitted)."""

    def start(self, receiver: Receiver) -> None:
        """Begin delivering the other processes' changes to `receiver`."""

    async def close(self) -> None:
        """Stop listening."""


class LocalRelay:
    """One process: nobody else to tell."""

    async def publish(self, assignment_id: str, kind: str, update: bytes = b"") -> None:
        """Nothing to do."""

    def start(self, receiver: Receiver) -> None:
        """Nothing to listen to."""

    async def close(self) -> None:
        """Nothing to stop."""


class RedisRelay:
    """Pub/sub on one channel per deployment prefix; a process ignores its own messages.

    Changes are published in batches by one writer task (whatever queued up while the previous publish was
    in flight), so a busy process sends one Redis command per batch, not one per update.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}worksheets:docs"
        self._origin = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._queue: list[dict[str, str]] = []
        self._writer: asyncio.Task[None] | None = None

    async def publish(self, assignment_id: str, kind: str, update: bytes = b"") -> None:
        """Queue a change for the other processes (published in the background)."""
        self._queue.append({"a": assignment_id, "k": kind, "u": base64.b64encode(update).decode()})
        if self._writer is None:
            self._writer = asyncio.create_task(self._publish_all())

    async def _publish_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self._redis.publish(self._channel, orjson.dumps({"o": self._origin, "m": batch}))
                except REDIS_DOWN as error:  # the stored log stays the truth; opening merges it
                    log.warning("worksheet relay publish failed: %s", type(error).__name__)
        finally:
            self._writer = None

    def start(self, receiver: Receiver) -> None:
        """Listen in the background (reconnecting after an outage)."""
        self._task = asyncio.create_task(self._listen(receiver))

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Until the subscription is active (tests)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _listen(self, receiver: Receiver) -> None:
        while True:
            try:
                await self._subscribed(receiver)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._ready.clear()
                log.warning("worksheet relay listener restarting: %s", type(error).__name__)
                await asyncio.sleep(1.0)

    async def _subscribed(self, receiver: Receiver) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            self._ready.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                data = orjson.loads(message["data"])
                if data["o"] != self._origin:
                    for change in data["m"]:
                        await self._deliver(receiver, change)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    @staticmethod
    async def _deliver(receiver: Receiver, data: dict[str, str]) -> None:
        try:
            await receiver(data["a"], data["k"], base64.b64decode(data["u"]))
        except Exception:
            log.exception("applying a relayed worksheet change failed")

    async def close(self) -> None:
        """Publish what is queued, then stop listening."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
