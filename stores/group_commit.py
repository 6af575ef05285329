"""Group commit: concurrent single-document inserts (and compare-and-set updates) into one collection, written
together.

Each caller awaits its own document; the writer sends whatever has queued up as one unordered
`insert_many` while the previous batch is in flight, so an idle server writes a document at once
and a busy one pays the database's per-command cost once per batch instead of once per document.
Batches also start at least `min_interval` seconds apart: a document that arrives within that
time of the previous batch's start waits for the rest of it, so under steady load each command
carries several documents (on SecantusDB a command's fixed cost is larger than a document's,
docs/performance.md); a document arriving after a quiet spell is written at once.
A document's own failure (a unique index, say) reaches only its caller. When the database falls
behind and `max_queued` documents are already waiting, a new one is refused at once (`Backlogged`)
instead of waiting behind a queue that only grows: the caller answers "try again" and nothing is lost.
When a batch fails for want of the database (down, or slower than its timeout), the documents queued
behind it fail with it, so no caller waits longer than one batch's bound.

With `combine`, a batch is stored as the one document `combine(batch)` returns (an update log whose entries
hold many updates: one document, and one set of index entries, per batch instead of per update); every caller
of the batch then gets that document's `_id`.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from stores.coalesce import Coalescer
from stores.mongo import Collection, Doc

DUPLICATE_KEY_CODES = (11000, 11001)


class Backlogged(Exception):
    """Too many documents are already waiting for the database."""


def write_error_of(write_error: dict[str, Any]) -> WriteError:
    code = write_error.get("code", 0)
    kind = DuplicateKeyError if code in DUPLICATE_KEY_CODES else WriteError
    return kind(write_error.get("errmsg", "write failed"), code, write_error)


class GroupInsert:
    """Inserts into `collection`, batched while a previous batch is being written."""

    def __init__(self, collection: Collection, max_batch: int = 256, max_queued: int = 1024,
                 min_interval: float = 0.0, combine: Callable[[list[Doc]], Doc] | None = None) -> None:
        self._collection = collection
        self._combine = combine
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._min_interval = min_interval
        self._last_start = float("-inf")  # loop time the latest batch was sent
        self._queue: list[tuple[Doc, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def backlogged(self) -> bool:
        """Whether a new document would be refused now."""
        return len(self._queue) >= self._max_queued

    async def insert(self, doc: Doc) -> Any:
        """Store `doc` (with its `_id` set); raises DuplicateKeyError or WriteError for this document only,
        and Backlogged without writing it when the queue is full. Returns the `_id` of the stored document
        (with `combine`: of the batch's document)."""
        if self.backlogged:
            raise Backlogged(len(self._queue))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((doc, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await done  # a cancelled caller cancels only its own future; its batch is written regardless

    async def idle(self, within: float) -> bool:
        """Wait up to `within` seconds until no batch is queued or being written; whether it is so now.

        Background work that shares the database can start after the inserts waiting for it (it yields to
        them) without waiting forever under steady load."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait((writer,), timeout=within)
        return self._writer is None

    async def drain(self) -> None:
        """Wait until everything queued so far is written (shutdown, tests)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                wait = self._last_start + self._min_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_start = loop.time()
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[tuple[Doc, asyncio.Future[Any]]]) -> None:
        failed: dict[int, dict[str, Any]] = {}
        docs = [doc for doc, _ in batch]
        combined = self._combine(docs) if self._combine is not None else None
        try:
            if combined is not None:
                await self._collection.insert_one(combined)
            else:
                await self._collection.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            failed = {each["index"]: each for each in error.details.get("writeErrors", [])}
        except WriteError as error:  # the combined document (one for the whole batch)
            failed = {index: {"code": error.code, "errmsg": str(error)} for index in range(len(batch))}
        except (PyMongoError, OSError) as error:
            # Nothing is known to be written: every caller of the batch hears it, and so does every one
            # queued behind it (the database did not answer within its bound; waiting for the next batch
            # would double their wait). Each may send again: inserts are idempotent by `_id`.
            queued, self._queue = self._queue, []
            for _, done in batch + queued:
                if not done.done():
                    done.set_exception(error)
            return
        for index, (_, done) in enumerate(batch):
            if done.done():
                continue
            if index in failed:
                done.set_exception(write_error_of(failed[index]))
            else:
                done.set_result((combined or docs[index])["_id"])


class GroupUpdate:
    """Compare-and-set updates of single existing documents (`_id` plus conditions), those of a burst written as
    one unordered bulk write, each still told whether it matched.

    Each update goes out as an upsert: a document that exists but no longer meets its conditions makes that
    update alone fail with a duplicate `_id` (reported by index) instead of being changed, which is what says
    "not matched" per update (a bulk write only counts matches). Only for documents that are never deleted: an
    update of a missing one would create it.
    """

    def __init__(self, collection: Collection, max_batch: int = 256) -> None:
        self._collection = collection
        self._writes: Coalescer[tuple[Doc, Doc], bool] = Coalescer(self._write, max_batch)

    async def set_if(self, condition: Doc, update: Doc) -> bool:
        """Apply `update` to the document matching `condition` (its `_id` included); False when it did not match."""
        return await self._writes.submit((condition, update))

    async def _write(self, batch: list[tuple[Doc, Doc]]) -> list[bool | BaseException]:
        try:
            await self._collection.bulk_write([UpdateOne(condition, update, upsert=True)
                                               for condition, update in batch], ordered=False)
            return [True] * len(batch)
        except BulkWriteError as error:
            failed = {each["index"]: each for each in error.details.get("writeErrors", [])}
        return [True if index not in failed else
                False if failed[index].get("code") in DUPLICATE_KEY_CODES else write_error_of(failed[index])
                for index in range(len(batch))]


class GroupMarkedUpdate:
    """Conditional updates of single documents that may be missing (nothing is ever created: no upsert), those of
    a burst written as one unordered bulk write, each still told whether it matched.

    A bulk write counts matches only in aggregate. Each update therefore also stamps its document's `mark` field
    with a token of its own: when every update matched (the usual case) that is all, otherwise one read of the
    batch's documents says which ones carry their update's token. Only for updates that make their own condition
    false (a state move: waiting -> admitted), so at most one update of a batch can match a document, and for a
    `mark` no other write sets.
    """

    def __init__(self, collection: Collection, mark: str, max_batch: int = 256) -> None:
        self._collection = collection
        self._mark = mark
        self._writes: Coalescer[tuple[Doc, Doc], bool] = Coalescer(self._write, max_batch)

    async def set_if(self, condition: Doc, update: Doc) -> bool:
        """Apply `update` to the document matching `condition` (its `_id` included); False when none matched."""
        return await self._writes.submit((condition, update))

    async def _write(self, batch: list[tuple[Doc, Doc]]) -> list[bool | BaseException]:
        tokens = [uuid.uuid4().hex for _ in batch]
        writes = [UpdateOne(condition, {**update, "$set": {**update.get("$set", {}), self._mark: token}})
                  for (condition, update), token in zip(batch, tokens, strict=True)]
        failed: dict[int, dict[str, Any]] = {}
        try:
            matched = (await self._collection.bulk_write(writes, ordered=False)).matched_count
        except BulkWriteError as error:
            failed = {each["index"]: each for each in error.details.get("writeErrors", [])}
            matched = int(error.details.get("nMatched", 0))
        if matched == len(batch) - len(failed):
            return [write_error_of(failed[index]) if index in failed else True for index in range(len(batch))]
        ids = list({condition["_id"] for condition, _ in batch})
        stamped = {doc[self._mark] async for doc in self._collection.find(
            {"_id": {"$in": ids}, self._mark: {"$in": tokens}}, {self._mark: 1})}
        return [write_error_of(failed[index]) if index in failed else token in stamped
                for index, token in enumerate(tokens)]
