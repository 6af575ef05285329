"""The shape every feature is built in: shared resources in, one handler plus its jobs out.

A feature's `build(shared) -> Built[Handler]` (in `handlers/<feature>/feature.py`) creates its stores
(ensuring their indexes), its handler, its event subscriptions and its periodic jobs. server.py lists
the features once and hands each handler to its namespace and REST routes.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from clock import Clock
from config import Config
from handlers.auth import Authenticator
from handlers.documents import DocumentLinks
from handlers.events import EventBus
from handlers.jobs import JobCounters, Periodic
from handlers.publisher import Publisher
from handlers.relations import Relations
from stores.crypto import Cipher
from stores.mongo import Database
from stores.ratelimit import RateLimiter
from stores.redis import Redis
from stores.request_keys import RequestKeyStore
from stores.sockets import SocketRegistry
from stores.users import UserStore

H = TypeVar("H", covariant=True)


@dataclass(frozen=True)
class Shared:
    """What every feature is built from: configuration, clients and the app-wide services."""

    config: Config
    db: Database
    redis: Redis | None
    clock: Clock
    bus: EventBus
    publisher: Publisher
    sockets: SocketRegistry
    rate_limiter: RateLimiter
    auth: Authenticator
    cipher: Cipher
    users: UserStore
    request_keys: RequestKeyStore
    relations: Relations
    documents: DocumentLinks
    jobs: JobCounters = field(default_factory=JobCounters)  # what the background queues did (/metrics)


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Built(Generic[H]):
    """A built feature: the handler its namespace calls, its periodic jobs, and how to close it."""

    handler: H
    jobs: tuple[Periodic, ...] = ()
    close: Callable[[], Awaitable[None]] = _nothing
