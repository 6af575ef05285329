"""The domain event bus: handlers publish what happened, other handlers react.

Subscribers run in background tasks so a request is never slowed or failed by a
reaction to it; `drain()` waits for them (shutdown, tests).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

log = logging.getLogger("careline.events")


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened, e.g. `message.created` with the message as payload."""

    name: str
    payload: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[DomainEvent], Awaitable[None]]


class EventBus:
    """In-process publish/subscribe between handlers (wired in server.create_app)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        """Call `subscriber` for every event called `name`."""
        self._subscribers.setdefault(name, []).append(subscriber)

    async def publish(self, name: str, **payload: Any) -> None:
        """Announce an event; subscribers run in the background."""
        event = DomainEvent(name, payload)
        for subscriber in self._subscribers.get(name, ()):
            task = asyncio.create_task(self._run(subscriber, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, subscriber: Subscriber, event: DomainEvent) -> None:
        try:
            await subscriber(event)
        except Exception:
            log.exception("subscriber %s failed on %s", getattr(subscriber, "__qualname__", subscriber), event.name)

    async def drain(self) -> None:
        """Wait until every running subscriber has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
