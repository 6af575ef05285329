"""The Yjs documents of assignments: an append-only update log (`worksheet_log`) and one snapshot per document
(`worksheet_snapshots`), both stored only as AES-256-GCM ciphertext.

An update is acknowledged once it is written to the log. Appends are group-committed across documents: one log
entry per batch, `{_id, docs: [assignment ids], parts: [{i: part id, a: assignment id, u: sealed update}], at}`,
so the database writes one document (and one set of index entries) per batch, not per update (on SecantusDB a
document costs ~0.1 ms to insert with its indexes, a part a few µs). Each part is sealed on its own, bound to its
document and part id, so a document's parts are read and removed without touching the others'.

Compaction merges the snapshot with the document's parts into a new snapshot (a compare-and-set on the
snapshot's `rev`, so two compactors never overwrite each other) and only then pulls exactly its parts out of
the entries it read (entries never gain parts once written), deleting entries left empty: a crash at any point
leaves every update either in the snapshot, in the log, or in both (Yjs applies a repeat as a no-op).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.crypto import Cipher, DecryptionError, Sealed
from stores.group_commit import GroupInsert
from stores.mongo import Database, Doc, new_id

log = logging.getLogger("careline.worksheets")

MAX_BATCH = 128  # updates per log entry (48 KiB at most each: an entry stays far below MongoDB's 16 MB)
MAX_QUEUED = 1024  # updates waiting to be written before new ones are refused (`unavailable`, send again)
CLEANUP_CHUNK = 50  # log entries one compaction command cleans (short commands: appends go on in between)


@dataclass(frozen=True)
class StoredDocument:
    """What is stored of one document: the snapshot (None before the first), its rev, and the log after it
    (`entry_ids`: the log entries holding its parts)."""

    snapshot: bytes | None
    rev: int
    entry_ids: tuple[str, ...]
    updates: tuple[bytes, ...]


@dataclass(frozen=True)
class LogRef:
    """Where an appended update is: its log entry and its part in it."""

    entry_id: str
    part_id: str


def _entry(parts: list[Doc]) -> Doc:
    """One log entry for a batch of appended parts (`combine` of the group commit)."""
    return {"_id": new_id(), "docs": list(dict.fromkeys(part["a"] for part in parts)),
            "parts": [{"i": part["i"], "a": part["a"], "u": part["u"]} for part in parts],
            "at": min(part["at"] for part in parts)}


def _parts_of(assignment_id: str) -> Doc:
    """A projection: only the parts of one document."""
    return {"parts": {"$filter": {"input": "$parts", "cond": {"$eq": ["$$this.a", assignment_id]}}}}


class DocumentStore:
    """Appends updates durably, reads a document back, and swaps merged log entries for a snapshot."""

    def __init__(self, db: Database, cipher: Cipher, batch_interval: float = 0.0) -> None:
        self._log = db["worksheet_log"]
        self._snapshots = db["worksheet_snapshots"]
        self._inserts = GroupInsert(self._log, max_batch=MAX_BATCH, max_queued=MAX_QUEUED,
                                    min_interval=batch_interval, combine=_entry)
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        """The log entries holding a document's parts; the oldest entries (the idle compaction sweep)."""
        await self._log.create_index([("docs", ASCENDING), ("_id", ASCENDING)])
        await self._log.create_index([("at", ASCENDING)])

    async def drain(self) -> None:
        """Wait for queued appends (shutdown)."""
        await self._inserts.drain()

    @property
    def busy(self) -> bool:
        """An append now would be refused (Backlogged): too many are waiting for the database."""
        return self._inserts.backlogged

    async def append(self, assignment_id: str, update: bytes, now: datetime) -> LogRef:
        """Write one update to the log; returns where it is once it is durable (raises Backlogged when too
        many wait). Appends of every document share the group commit: one log entry per batch."""
        part_id = new_id()
        sealed = self._cipher.seal(update, f"{assignment_id}:{part_id}".encode()).to_doc()
        entry_id = await self._inserts.insert({"i": part_id, "a": assignment_id, "u": sealed, "at": now})
        return LogRef(str(entry_id), part_id)

    async def discard(self, assignment_id: str, ref: LogRef) -> None:
        """Remove one appended update (refused after it was stored: the document was locked meanwhile)."""
        await self._log.update_one({"_id": ref.entry_id}, {"$pull": {"parts": {"i": ref.part_id}}})
        await self._log.update_one({"_id": ref.entry_id, "parts.a": {"$ne": assignment_id}},
                                   {"$pull": {"docs": assignment_id}})
        await self._log.delete_one({"_id": ref.entry_id, "parts": {"$size": 0}})

    async def load(self, assignment_id: str) -> StoredDocument:
        """The snapshot and every logged part of a document (an undecryptable one is logged and skipped)."""
        snapshot = await self._snapshots.find_one({"_id": assignment_id})
        ids: list[str] = []
        updates: list[bytes] = []
        async for entry in self._entries(assignment_id):
            ids.append(entry["_id"])
            for part in entry["parts"]:
                opened = self._open(part["u"], f"{assignment_id}:{part['i']}")
                if opened is not None:
                    updates.append(opened)
        state = self._open(snapshot["s"], assignment_id) if snapshot else None
        return StoredDocument(state, snapshot["rev"] if snapshot else 0, tuple(ids), tuple(updates))

    def _entries(self, assignment_id: str) -> Any:
        """The log entries holding the document's parts, oldest first, with only its parts."""
        return self._log.find({"docs": assignment_id}, _parts_of(assignment_id)).sort([("_id", ASCENDING)])

    def _open(self, sealed: Doc, aad: str) -> bytes | None:
        try:
            return self._cipher.open(Sealed.from_doc(sealed), aad.encode())
        except DecryptionError as error:
            log.warning("worksheet document %s cannot be decrypted: %s", aad, error)
            return None

    async def replace_snapshot(self, assignment_id: str, state: bytes, rev: int, merged_ids: tuple[str, ...],
                               now: datetime) -> bool:
        """Store `state` as snapshot rev+1 if the snapshot is still at `rev`, then pull the document's parts out of
        the merged entries (the entries `load` returned: entries gain no parts once written)."""
        doc = {"s": self._cipher.seal(state, assignment_id.encode()).to_doc(), "rev": rev + 1, "at": now}
        if rev == 0:
            try:
                await self._snapshots.insert_one({"_id": assignment_id, **doc})
            except DuplicateKeyError:
                return False
        else:
            result = await self._snapshots.update_one({"_id": assignment_id, "rev": rev}, {"$set": doc})
            if result.modified_count != 1:
                return False
        for start in range(0, len(merged_ids), CLEANUP_CHUNK):  # short commands: appends go on in between
            chunk = list(merged_ids[start:start + CLEANUP_CHUNK])
            await self._log.update_many({"_id": {"$in": chunk}},
                                        {"$pull": {"parts": {"a": assignment_id}, "docs": assignment_id}})
            await self._log.delete_many({"_id": {"$in": chunk}, "parts": {"$size": 0}})
        return True

    async def log_length(self, assignment_id: str) -> int:
        """How many logged updates a document has (tests, benchmark)."""
        return sum([len(entry["parts"]) async for entry in self._entries(assignment_id)])

    async def idle_documents(self, before: datetime, limit: int) -> list[str]:
        """Documents with a log entry older than `before` (compacted on idle)."""
        # No sort: on SecantusDB a sorted read fetches every match before the limit (docs/storage.md).
        cursor = self._log.find({"at": {"$lt": before}}, {"docs": 1}).limit(limit * 50)
        return list(dict.fromkeys([each async for doc in cursor for each in doc["docs"]]))[:limit]
