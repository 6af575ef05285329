"""Opening the database (starting and supervising the embedded server when no URI is set) and probing the
stores for /ready."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from config import Config
from stores import mongo
from stores import redis as redis_store
from stores.embedded import EmbeddedMongo, default_storage
from stores.mongo import Database, MongoClient
from stores.redis import Redis
from stores.supervisor import EmbeddedSupervisor

READY_TIMEOUT = 2.0


@dataclass(frozen=True)
class Connections:
    """The open database (and the embedded server behind it and its supervisor, if any) and Redis (None: one
    process)."""

    client: MongoClient
    db: Database
    embedded: EmbeddedMongo | None
    redis: Redis | None
    supervisor: EmbeddedSupervisor | None = None

    async def readiness(self) -> dict[str, str]:
        """Each store's state: "ok" or why it is unreachable (each probe bounded by READY_TIMEOUT).

        While the supervisor knows the embedded database is down (restarting, stopped, paused, not
        answering) that is the answer at once, without waiting for a probe to time out.
        """
        known = self.supervisor.problem if self.supervisor is not None else None
        if known is None and self.embedded is not None and not self.embedded.running:
            known = "embedded database stopped"
        checks = [] if known is not None else [_probe("mongodb", mongo.ping(self.client))]
        if self.redis is not None:
            checks.append(_probe("redis", redis_store.ping(self.redis)))
        results = dict(await asyncio.gather(*checks))
        if known is not None:
            results = {"mongodb": f"unreachable ({known})", **results}
        return results

    async def stop_supervising(self) -> None:
        """Stop restarting the embedded database (shutdown begins; idempotent)."""
        if self.supervisor is not None:
            await self.supervisor.close()


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT)
        return name, "ok"
    except Exception as exc:
        return name, f"unreachable ({type(exc).__name__})"


Opened = tuple[MongoClient, Database, EmbeddedMongo | None, EmbeddedSupervisor | None]


@contextlib.asynccontextmanager
async def open_database(config: Config, on_embedded_restart: Callable[[], object] | None = None,
                        ) -> AsyncIterator[Opened]:
    """The database client, starting, supervising (`on_embedded_restart` is called on each restart) and always
    stopping the embedded server when no URI is set. The supervisor stops first: nothing restarts the
    database while careline stops."""
    embedded = supervisor = None
    uri = config.mongodb_uri
    if uri is None:
        embedded = EmbeddedMongo(default_storage(config.data_dir))
    try:
        if embedded is not None:
            await embedded.start_async()
            uri = embedded.uri
            supervisor = EmbeddedSupervisor(embedded, on_restart=on_embedded_restart)
            supervisor.start()
        client = mongo.connect(uri or "", pool_size=config.mongodb_pool_size, timeout_ms=config.dependency_timeout_ms,
                               write_concern=config.mongodb_write_concern, retry_writes=False if embedded else None)
        try:
            yield client, client[config.mongodb_db], embedded, supervisor
        finally:
            if supervisor is not None:
                await supervisor.close()
            await client.close()
    finally:
        if supervisor is not None:
            await supervisor.close()
        if embedded is not None:
            embedded.stop()


@contextlib.asynccontextmanager
async def open_connections(config: Config, on_embedded_restart: Callable[[], object] | None = None,
                           ) -> AsyncIterator[Connections]:
    """The database and (when REDIS_URL is set) Redis, closed on exit (`on_embedded_restart`: see open_database)."""
    async with open_database(config, on_embedded_restart) as (client, db, embedded, supervisor):
        redis = redis_store.connect(config.redis_url, config.dependency_timeout_ms) if config.redis_url else None
        try:
            yield Connections(client, db, embedded, redis, supervisor)
        finally:
            if redis is not None:
                await redis.aclose()
