"""Opening the database (starting the embedded server when no URI is set) and probing the stores for /ready."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from config import Config
from stores import mongo
from stores import redis as redis_store
from stores.embedded import EmbeddedMongo, default_storage
from stores.mongo import Database, MongoClient
from stores.redis import Redis

READY_TIMEOUT = 2.0


@dataclass(frozen=True)
class Connections:
    """The open database (and the embedded server behind it, if any) and Redis (None: one process)."""

    client: MongoClient
    db: Database
    embedded: EmbeddedMongo | None
    redis: Redis | None

    async def readiness(self) -> dict[str, str]:
        """Each store's state: "ok" or why it is unreachable (each probe bounded by READY_TIMEOUT)."""
        checks = [_probe("mongodb", mongo.ping(self.client))]
        if self.redis is not None:
            checks.append(_probe("redis", redis_store.ping(self.redis)))
        results = dict(await asyncio.gather(*checks))
        if self.embedded is not None and not self.embedded.running:
            results["mongodb"] = "unreachable (embedded database stopped)"
        return results


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT)
        return name, "ok"
    except Exception as exc:
        return name, f"unreachable ({type(exc).__name__})"


@contextlib.asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[tuple[MongoClient, Database, EmbeddedMongo | None]]:
    """The database client, starting (and always stopping) the embedded server when no URI is set."""
    embedded = None
    uri = config.mongodb_uri
    if uri is None:
        embedded = EmbeddedMongo(default_storage(config.data_dir))
    try:
        if embedded is not None:
            await embedded.start_async()
            uri = embedded.uri
        client = mongo.connect(uri or "", pool_size=config.mongodb_pool_size, retry_writes=False if embedded else None)
        try:
            yield client, client[config.mongodb_db], embedded
        finally:
            await client.close()
    finally:
        if embedded is not None:
            embedded.stop()


@contextlib.asynccontextmanager
async def open_connections(config: Config) -> AsyncIterator[Connections]:
    """The database and (when REDIS_URL is set) Redis, closed on exit."""
    async with open_database(config) as (client, db, embedded):
        redis = redis_store.connect(config.redis_url) if config.redis_url else None
        try:
            yield Connections(client, db, embedded, redis)
        finally:
            if redis is not None:
                await redis.aclose()
