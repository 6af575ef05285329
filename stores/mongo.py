"""MongoDB client lifecycle and the small helpers every store shares."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from errors import Conflict

Doc = dict[str, Any]
Database = AsyncDatabase[Doc]
Collection = AsyncCollection[Doc]
MongoClient = AsyncMongoClient[Doc]
T = TypeVar("T")


def connect(uri: str, *, pool_size: int = 100, timeout_ms: int = 5000,
            retry_writes: bool | None = None) -> AsyncMongoClient[Doc]:
    """Create the process-wide client (tz-aware datetimes, bounded server selection and pool).

    `retry_writes=False` is for the embedded SecantusDB on loopback: it has no failover to retry
    across, and its retryable-write registry scans up to 10,000 records on every write (upstream).
    None leaves it to the URI (`retryWrites=false` there for a separately run SecantusDB).
    """
    options: dict[str, Any] = {} if retry_writes is None else {"retryWrites": retry_writes}
    return AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
        maxPoolSize=pool_size, appname="careline", **options,
    )


async def ping(client: AsyncMongoClient[Doc]) -> None:
    """Raise unless the server answers."""
    await client.admin.command("ping")



def new_id() -> str:
    """A fresh, sortable string id."""
    return str(ObjectId())


async def insert_or_existing(
    collection: Collection, doc: Doc, key: Doc,
) -> tuple[Doc, bool]:
    """Insert `doc`; if a unique index says it exists, return the document matching `key`.

    Returns (document, created). Used for idempotent creates keyed by requestId.
    """
    try:
        await collection.insert_one(doc)
        return doc, True
    except DuplicateKeyError:
        existing = await collection.find_one(key)
        if existing is None:
            raise Conflict("Already exists") from None
        return existing, False


async def conflict_on_duplicate(call: Callable[[], Awaitable[T]], message: str = "Already exists") -> T:
    """Run a write and turn a unique-index violation into `Conflict`."""
    try:
        return await call()
    except DuplicateKeyError:
        raise Conflict(message) from None
