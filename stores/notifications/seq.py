"""The notifications' global seq counter, with the seqs still being written (so catch-up never skips one)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from clock import utcnow
from stores.coalesce import Coalescer
from stores.mongo import Database, Doc

COUNTER_ID = "seq"
DEFAULT_HOLD = timedelta(seconds=30)


@dataclass(frozen=True)
class Settled:
    """What a catch-up may return: seqs up to `seq`; `held` when a later one is still being written."""

    seq: int
    held: bool


class SeqCounter:
    """One counter document: `seq` (the last allocated) and `pending` [{seq, until}] (allocated, not yet written).

    A writer that dies keeps its seq pending only until `until`; after that catch-up steps over it
    (and the next catch-up that sees such an entry removes it).
    """

    def __init__(self, db: Database) -> None:
        self._counters = db["notification_counters"]
        # catch-ups arriving together (a restarted process's clients) read the counter once per batch
        self._reads: Coalescer[None, Doc] = Coalescer(self._read_counter)
        self._allocations: Coalescer[datetime, int] = Coalescer(self._allocate)
        self._releases: Coalescer[int, None] = Coalescer(self._release)

    async def allocate(self, hold: timedelta = DEFAULT_HOLD) -> int:
        """Take the next seq and mark it pending (allocations asked together share one atomic update)."""
        return await self._allocations.submit(utcnow() + hold)

    async def _allocate(self, holds: list[datetime]) -> list[int]:
        """The next len(holds) seqs, each pending until its hold, in one atomic update: a notification per
        recipient of a busy moment is one write on the hot counter document, not one each."""
        entries = [{"seq": {"$add": [{"$ifNull": ["$seq", 0]}, offset]}, "until": until}
                   for offset, until in enumerate(holds, start=1)]
        update: list[Doc] = [  # the entries are computed from the seq before the update moves it on
            {"$set": {"pending": {"$concatArrays": [{"$ifNull": ["$pending", []]}, entries]}}},
            {"$set": {"seq": {"$add": [{"$ifNull": ["$seq", 0]}, len(holds)]}}},
        ]
        while True:  # a tiny collection: findAndModify's write phase scans one document
            try:
                doc = await self._counters.find_one_and_update({"_id": COUNTER_ID}, update, upsert=True,
                                                               return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                doc = None
            if doc is not None:  # the first-ever upserts can race; the losers retry as updates
                last = int(doc["seq"])
                return list(range(last - len(holds) + 1, last + 1))

    async def release(self, seq: int) -> None:
        """The seq's documents are written (or will never be): catch-up may pass it (releases asked together
        are one update)."""
        await self._releases.submit(seq)

    async def _release(self, seqs: list[int]) -> list[None]:
        await self._counters.update_one({"_id": COUNTER_ID}, {"$pull": {"pending": {"seq": {"$in": seqs}}}})
        return [None] * len(seqs)

    def lease(self, hold: timedelta = DEFAULT_HOLD) -> SeqLease:
        """`async with counter.lease() as lease: seq = await lease.seq()`: released however the block ends."""
        return SeqLease(self, hold)

    async def settled(self, after: int) -> Settled:
        """The highest seq a catch-up after `after` may return without stepping over one still pending."""
        doc = await self._reads.submit(None)
        last, now = int(doc.get("seq", 0)), utcnow()
        waiting = [entry["seq"] for entry in doc.get("pending", ()) if entry["seq"] > after and entry["until"] > now]
        return Settled(min(waiting) - 1, True) if waiting else Settled(last, False)

    async def _read_counter(self, batch: list[None]) -> list[Doc]:
        """The counter as it is now, for every catch-up of the batch (each asked before the read began)."""
        doc = await self._counters.find_one({"_id": COUNTER_ID}) or {}
        now = utcnow()
        if any(entry["until"] <= now for entry in doc.get("pending", ())):  # left by a writer that died: forget them
            await self._counters.update_one({"_id": COUNTER_ID}, {"$pull": {"pending": {"until": {"$lte": now}}}})
        return [doc] * len(batch)


class SeqLease:
    """A seq allocated for the block that writes it; the allocation may run alongside other awaits."""

    def __init__(self, counter: SeqCounter, hold: timedelta) -> None:
        self._counter, self._hold = counter, hold
        self._allocation: asyncio.Task[int] | None = None

    async def __aenter__(self) -> SeqLease:
        return self

    def seq(self) -> asyncio.Task[int]:
        """The allocated seq (allocated on first call; await it)."""
        if self._allocation is None:
            self._allocation = asyncio.ensure_future(self._counter.allocate(self._hold))
        return self._allocation

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._allocation is None:
            return
        try:  # the allocation may still be running when another await in the block failed
            seq = await asyncio.shield(self._allocation)
        except Exception:
            return
        await self._counter.release(seq)
