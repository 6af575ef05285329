"""Compaction: whole update-log entries folded into their documents' snapshots, then deleted.

A log entry holds the updates of one group commit, for any number of documents (stores/worksheets/documents.py).
A process folds the entries it wrote once it appended `every` updates since its last round, and the scheduler
folds entries older than the idle time whoever wrote them (a process that stopped leaves its entries to it). A
round reads the entries' parts, stores each document's snapshot once with all its parts merged in (a
compare-and-set: a compactor that lost to another reads the snapshot again and merges again), and deletes the
entries only once every one of their documents is stored. A round costs two database operations per document
it touches, whatever the number of updates: rounds are few and large (`every` is thousands of updates), so that
cost is shared by many updates of each document. Nothing is deleted that is not in a stored snapshot; a round that fails
half-way leaves its entries for the next one (their parts merge again as no-ops).

Two ways to fold a document:
- merged: its snapshot and the round's parts of it merged as updates (`merge_updates`, exact: an update whose
  dependency is in an entry no round folded yet stays, pending, in the snapshot). Cheap (the round's entries are
  read once), but deleted text stays in the snapshot: a process's own rounds merge, until a snapshot passes
  FULL_FOLD_BYTES.
- full: its snapshot and all of its log, whatever entry holds it, applied to one document and encoded again
  (deleted text dropped; what is still pending then waits on an update that was never stored). Idle rounds, and a
  snapshot past FULL_FOLD_BYTES, fold in full.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pycrdt import Doc, merge_updates

from clock import Clock
from stores.worksheets.documents import DocumentStore

log = logging.getLogger("careline.worksheets")

IDLE_ROUND_ENTRIES = 1000  # old log entries one idle round folds at most
IDLE_ROUNDS = 5  # idle rounds one scheduler tick runs at most (a stopped process may have left many entries)
ATTEMPTS = 3  # compare-and-set attempts per document and round (then the entries wait for the next round)
FULL_FOLD_BYTES = 64 * 1024  # a merged snapshot larger than this is folded in full (its deleted text dropped)


class Compactor:
    """Folds update-log entries into snapshots: this process's own after `every` appends, old ones when idle."""

    def __init__(self, documents: DocumentStore, clock: Clock, every: int) -> None:
        self.documents = documents
        self.clock = clock
        self.every = every
        self._written: dict[str, None] = {}  # entries this process wrote and has not folded yet (in order)
        self._appended = 0  # updates appended since the last round started
        self._running = asyncio.Lock()

    def appended(self, entry_id: str) -> bool:
        """One update was appended in `entry_id`; whether a round of this process's entries is due now."""
        self._written[entry_id] = None
        self._appended += 1
        if self._appended < self.every or self._running.locked():
            return False
        self._appended = 0
        return True

    async def own_round(self) -> None:
        """Fold the entries this process wrote so far."""
        async with self._running:
            taken = list(self._written)
            if taken and await self.fold(taken, full=False):
                for entry_id in taken:
                    self._written.pop(entry_id, None)

    async def idle_rounds(self, before: datetime) -> int:
        """Fold entries written before `before` (by any process); how many were deleted."""
        folded = 0
        for _ in range(IDLE_ROUNDS):
            entry_ids = await self.documents.entries_before(before, IDLE_ROUND_ENTRIES)
            if not entry_ids or not await self.fold(entry_ids):
                break
            for entry_id in entry_ids:
                self._written.pop(entry_id, None)
            folded += len(entry_ids)
            if len(entry_ids) < IDLE_ROUND_ENTRIES:
                break
        return folded

    async def fold(self, entry_ids: list[str], full: bool = True) -> bool:
        """Store the snapshot of every document the entries hold parts of with those parts in (`full`: with all of
        its log), then delete the entries; False (nothing deleted) when a document could not be stored this time."""
        if full:
            parts: dict[str, list[bytes] | None] = dict.fromkeys(await self.documents.documents_in(entry_ids))
        else:
            parts = {**await self.documents.parts_of(entry_ids)}
        for assignment_id, updates in parts.items():
            if not await self._fold_document(assignment_id, updates):
                log.info("a worksheet snapshot kept changing under compaction; its log waits for the next round")
                return False
        await self.documents.delete_entries(entry_ids)
        return True

    async def _fold_document(self, assignment_id: str, updates: list[bytes] | None) -> bool:
        """Store the document's snapshot merged with `updates` (None: folded in full), read again and retried when
        another compactor stored one meanwhile."""
        for _ in range(ATTEMPTS):
            if updates is not None:
                snapshot, rev = await self.documents.snapshot(assignment_id)
                state = merge_updates(*([snapshot] if snapshot else []), *updates)
                if len(state) > FULL_FOLD_BYTES:
                    updates = None
                    continue
            else:
                stored = await self.documents.load(assignment_id)
                state = _applied(assignment_id, ([stored.snapshot] if stored.snapshot else []) + list(stored.updates))
                rev = stored.rev
            if await self.documents.replace_snapshot(assignment_id, state, rev, self.clock()):
                return True
        return False


def _applied(assignment_id: str, updates: list[bytes]) -> bytes:
    """The updates applied to one document, encoded again (deleted text dropped)."""
    merged: Doc = Doc()
    for update in updates:
        try:
            merged.apply_update(update)
        except Exception:
            log.warning("a stored update of %s could not be applied", assignment_id)
    return merged.get_update()
