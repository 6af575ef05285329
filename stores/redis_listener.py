"""One Redis pub/sub channel listened to in the background: each message's data handed on in order, the
subscription opened again a second after an outage, and whoever cares told when it is up or down.

Given the Redis URL and one the lean channel reads itself (stores/redis_channel.py: `redis://` or `unix://`), the
subscription is a connection of its own parsed by hiredis, one read per batch of messages; otherwise (`rediss://`,
or no URL) redis-py's PubSub, one message per call."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from stores.redis import Redis
from stores.redis_channel import ChannelSubscription, lean_channel_supported

RETRY_SECONDS = 1.0

Handle = Callable[[bytes], Awaitable[None]]
Changed = Callable[[bool], None]  # True: subscribed; False: the subscription dropped


class ChannelListener:
    """Subscribes to `channel` while started; `what` names it in the log; `url`: the Redis URL `redis` was made
    from (enables the lean subscription)."""

    def __init__(self, redis: Redis, channel: str, what: str, log: logging.Logger, url: str | None = None) -> None:
        self._redis = redis
        self._lean = ChannelSubscription(url, channel) if url and lean_channel_supported(url) else None
        self._channel = channel
        self._what = what
        self._log = log
        self._task: asyncio.Task[None] | None = None

    def start(self, handle: Handle, changed: Changed | None = None) -> None:
        """Hand every message's data to `handle` (awaited, one at a time) until `close`."""
        self._task = asyncio.create_task(self._listen(handle, changed or (lambda up: None)))

    async def close(self) -> None:
        """Stop listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self, handle: Handle, changed: Changed) -> None:
        while True:
            try:
                await self._subscribed(handle, changed)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._log.warning("%s restarting: %s", self._what, type(error).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def _subscribed(self, handle: Handle, changed: Changed) -> None:
        if self._lean is not None:
            await self._subscribed_lean(self._lean, handle, changed)
            return
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            changed(True)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    await handle(message["data"])
        finally:
            changed(False)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    @staticmethod
    async def _subscribed_lean(subscription: ChannelSubscription, handle: Handle, changed: Changed) -> None:
        up = False
        try:
            async for payloads in subscription.batches():
                if not up:
                    up = True
                    changed(True)
                for payload in payloads:
                    await handle(payload)
        finally:
            if up:
                changed(False)


__all__ = ["ChannelListener"]
