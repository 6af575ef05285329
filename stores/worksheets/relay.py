"""Carries document changes between processes (Redis pub/sub): every process holding a document in memory
applies the updates the others accepted, relays them to its own sockets in the document's room, and hears when
a submission freezes a document (and confirms once its writes of it under way settled), unfreezes it (the
submission failed) or locks it (the submission was stored).

One message per batch of changes, whatever the number of documents: an accepted update crosses processes once,
for both the held copies and the room's sockets (it is not published again through the Socket.IO manager). The
update travels as the base64 text the wire carries, so nothing is re-encoded on the way. This is not a durable
channel (the update log is): a process that missed a message still merges the stored document whenever the
document is opened or synced.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from stores.coalesce import Coalescer
from stores.redis import REDIS_DOWN, Redis
from stores.redis_channel import ChannelPublisher, lean_channel_supported
from stores.redis_listener import ChannelListener

log = logging.getLogger("careline.worksheets")

LEAN_PUBLISH_SECONDS = 2.0  # how long one batch may wait for Redis on the lean connection

#: "update": an accepted Yjs update; "freeze": a submission is under way, start no write (`note`: the
#: submitter's nonce); "frozen": a process starts no write of the document and the ones under way settled (`note`:
#: the nonce it confirms); "unfreeze": the submission failed (`note`: its nonce); "lock": the submission was
#: stored (every freeze of the document ends)
Kind = Literal["update", "freeze", "frozen", "unfreeze", "lock"]


@dataclass(frozen=True)
class Change:
    """One change of one document, as it crosses processes."""

    assignment_id: str
    kind: Kind
    update: str = ""  # base64, as the wire carries it ("update")
    sender: str = ""  # the socket that sent the update: not relayed back to it
    note: str = ""

    def to_wire(self) -> list[str]:
        """Compact: a list, no keys."""
        return [self.assignment_id, self.kind, self.update, self.sender, self.note]

    @classmethod
    def from_wire(cls, data: list[str]) -> Change:
        """The change a `to_wire` list describes."""
        assignment_id, kind, update, sender, note = data
        return cls(assignment_id, kind, update, sender, note)  # type: ignore[arg-type]


Receiver = Callable[[Change], Awaitable[None]]


class DocRelay(Protocol):
    """Publishes a document change to the other processes and hands theirs to a receiver."""

    async def publish(self, change: Change) -> None:
        """Tell the other processes (in the background, batched with other changes)."""

    async def publish_now(self, change: Change) -> int:
        """Tell the other processes now; how many other processes listen (each will receive it)."""

    def start(self, receiver: Receiver) -> None:
        """Begin delivering the other processes' changes to `receiver`."""

    async def close(self) -> None:
        """Stop listening."""


class LocalRelay:
    """One process: nobody else to tell."""

    async def publish(self, change: Change) -> None:
        """Nothing to do."""

    async def publish_now(self, change: Change) -> int:
        """Nobody listens."""
        return 0

    def start(self, receiver: Receiver) -> None:
        """Nothing to listen to."""

    async def close(self) -> None:
        """Nothing to stop."""


class RedisRelay:
    """Pub/sub on one channel per deployment prefix; a process ignores its own messages.

    Changes are published in batches (`Coalescer`: whatever queued up while the previous publish was in flight),
    so a busy process sends one Redis command per batch, not one per update.
    """

    def __init__(self, redis: Redis, prefix: str, url: str | None = None) -> None:
        self._redis = redis
        self._channel = f"{prefix}worksheets:docs"
        self._origin = uuid.uuid4().hex
        self._listener = ChannelListener(redis, self._channel, "worksheet relay listener", log, url)
        # batches go out on a lean connection of their own when the URL allows (stores/redis_channel.py)
        self._lean = ChannelPublisher(url, self._channel) if url and lean_channel_supported(url) else None
        self._ready = asyncio.Event()
        self._batches: Coalescer[list[str], None] = Coalescer(self._publish_batch)

    async def publish(self, change: Change) -> None:
        """Queue a change for the other processes (published in the background)."""
        self._batches.post(change.to_wire())

    async def publish_now(self, change: Change) -> int:
        """Publish one change at once; the number of other subscribed processes (0 when Redis is down)."""
        try:
            listeners = await self._redis.publish(self._channel, self._message([change.to_wire()]))
        except REDIS_DOWN as error:
            log.warning("worksheet relay publish failed: %s", type(error).__name__)
            return 0
        return max(0, int(listeners) - (1 if self._ready.is_set() else 0))

    def _message(self, batch: list[list[str]]) -> bytes:
        return orjson.dumps([self._origin, batch])

    async def _publish_batch(self, batch: list[list[str]]) -> list[None]:
        """One message for a batch of changes (those queued while the previous one was sent)."""
        try:
            if self._lean is not None:  # bounded like redis-py's commands (a hung Redis drops the batch)
                async with asyncio.timeout(LEAN_PUBLISH_SECONDS):
                    await self._lean.publish([self._message(batch)])
            else:
                await self._redis.publish(self._channel, self._message(batch))
        except (*REDIS_DOWN, OSError, TimeoutError) as error:  # the stored log stays the truth (opening merges)
            log.warning("worksheet relay publish failed: %s", type(error).__name__)
        return [None] * len(batch)

    def start(self, receiver: Receiver) -> None:
        """Listen in the background (reconnecting after an outage)."""
        async def received(data: bytes) -> None:
            origin, batch = orjson.loads(data)
            if origin != self._origin:
                for change in batch:
                    await self._deliver(receiver, change)

        self._listener.start(received, lambda up: self._ready.set() if up else self._ready.clear())

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Until the subscription is active (tests)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    @staticmethod
    async def _deliver(receiver: Receiver, data: list[str]) -> None:
        try:
            await receiver(Change.from_wire(data))
        except Exception:
            log.exception("applying a relayed worksheet change failed")

    async def close(self) -> None:
        """Publish what is queued, then stop listening."""
        await self._batches.drain()
        await self._listener.close()
        if self._lean is not None:
            self._lean.close()
