"""MongoDB client lifecycle and the small helpers every store shares."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, TypeVar

import pymongo
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from errors import Conflict
from stores.coalesce import Coalescer

Doc = dict[str, Any]
Database = AsyncDatabase[Doc]
Collection = AsyncCollection[Doc]
MongoClient = AsyncMongoClient[Doc]
T = TypeVar("T")


STARTUP_TIMEOUT_SECONDS = 300.0  # index builds and migrations at start-up may take long on a big database
# values per `$in` of `find_in`: SecantusDB checks every document it fetches against each listed value in
# turn, so one `$in` costs O(n^2) (measured on `_id`: ~270 us of its CPU per value at 512 values, against
# ~137 us for a lone value); a few dozen values per query is the cheapest per value
IN_CHUNK = 32
IN_FLIGHT = 8  # `find_in` queries sent at once (the embedded database's pool is 8 connections: leave others a turn)


def connect(uri: str, *, pool_size: int = 100, timeout_ms: int = 2000, write_concern: str = "majority",
            retry_writes: bool | None = None) -> AsyncMongoClient[Doc]:
    """Create the process-wide client: tz-aware datetimes, every operation bounded, durable acknowledgements.

    `timeout_ms` bounds each operation end to end (PyMongo's client-side `timeoutMS`: server selection,
    the connection, the round trip): past it the call raises a timeout, which callers answer with
    `unavailable`. `write_concern` is `majority` (with journal) or `1` (the primary's journal only).
    `retry_writes=False` is for the embedded SecantusDB on loopback: it has no failover to retry
    across, and its retryable-write registry scans up to 10,000 records on every write (upstream).
    None leaves it to the URI (`retryWrites=false` there for a separately run SecantusDB).
    """
    options: dict[str, Any] = {} if retry_writes is None else {"retryWrites": retry_writes}
    concern: str | int = write_concern if write_concern == "majority" else int(write_concern)
    return AsyncMongoClient(
        uri, tz_aware=True, timeoutMS=timeout_ms, w=concern, journal=True, maxPoolSize=pool_size,
        appname="careline", **options,
    )


def patient() -> AbstractContextManager[None]:
    """Operations inside wait up to STARTUP_TIMEOUT_SECONDS instead of the per-request bound (start-up work)."""
    return pymongo.timeout(STARTUP_TIMEOUT_SECONDS)


async def ping(client: AsyncMongoClient[Doc]) -> None:
    """Raise unless the server answers."""
    await client.admin.command("ping")



EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def due_by(moment: datetime) -> Doc:
    """A time range from the epoch up to `moment`: an open `$lte` makes SecantusDB walk every index entry of
    documents lacking the field (a meeting without `dueAt`: 550 ms at 20,000 meetings, against 3 ms)."""
    return {"$gte": EPOCH, "$lte": moment}


def new_id() -> str:
    """A fresh, sortable string id."""
    return str(ObjectId())


def _by_id(doc: Doc) -> Any:
    return doc["_id"]


class KeyedReads:
    """Reads of the documents whose `field` equals one key, coalesced: the reads of one burst (many requests at
    once) go out as one `find` by `$in` per batch instead of one command each (docs/performance.md, "Meetings:
    join -> admitted")."""

    def __init__(self, collection: Collection, field: str = "_id", max_batch: int = 256) -> None:
        self._collection = collection
        self._field = field
        self._reads: Coalescer[str, list[Doc]] = Coalescer(self._find, max_batch)

    async def one(self, key: str) -> Doc | None:
        """The document whose `field` is `key` (by `_id`: the one), None when there is none."""
        found = await self._reads.submit(key)
        return found[0] if found else None

    async def all(self, key: str) -> list[Doc]:
        """Every document whose `field` is `key`, by `_id`."""
        return await self._reads.submit(key)

    async def _find(self, keys: list[str]) -> list[list[Doc]]:
        wanted = list(dict.fromkeys(keys))
        query: Doc = {self._field: wanted[0] if len(wanted) == 1 else {"$in": wanted}}
        found: dict[str, list[Doc]] = {key: [] for key in wanted}
        async for doc in self._collection.find(query):  # no sort: on `_id` it could walk that index, not `field`'s
            found[doc[self._field]].append(doc)
        return [sorted(found[key], key=_by_id) for key in keys]


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


async def find_in(collection: Collection, field: str, values: Iterable[Any], projection: Doc | None = None,
                  per_value_limit: int = 0, **conditions: Any) -> list[Doc]:
    """The documents whose `field` is one of `values` (and that match `conditions`), by one `$in` query per
    IN_CHUNK distinct values, IN_FLIGHT of them at a time; `per_value_limit` (0: none) bounds each query's
    documents at that many per value it names. A document matching values of two queries comes back twice."""
    distinct = list(dict.fromkeys(values))
    chunks = [distinct[start:start + IN_CHUNK] for start in range(0, len(distinct), IN_CHUNK)]
    found: list[Doc] = []
    for wave in range(0, len(chunks), IN_FLIGHT):
        queries = [collection.find({field: {"$in": chunk}, **conditions}, projection)
                   .limit(per_value_limit * len(chunk)).to_list() for chunk in chunks[wave:wave + IN_FLIGHT]]
        found += [doc for page in await asyncio.gather(*queries) for doc in page]
    return found
