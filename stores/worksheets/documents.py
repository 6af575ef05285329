"""The Yjs documents of assignments: an append-only update log (`worksheet_updates`) and one snapshot per
document (`worksheet_snapshots`), both stored only as AES-256-GCM ciphertext.

An update is acknowledged once its log entry is written (group-committed with concurrent updates). Compaction
merges the snapshot with log entries into a new snapshot (a compare-and-set on the snapshot's `rev`, so two
compactors never overwrite each other) and only then deletes exactly the entries it merged: a crash at any
point leaves every update either in the snapshot, in the log, or in both (Yjs applies a repeat as a no-op).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.crypto import Cipher, DecryptionError, Sealed
from stores.group_commit import GroupInsert
from stores.mongo import Database, Doc, new_id

log = logging.getLogger("careline.worksheets")

MAX_BATCH = 64  # updates per insert command: one command must stay well inside the database timeout
MAX_QUEUED = 512  # updates waiting to be written before new ones are refused (`unavailable`, send again)
DELETE_CHUNK = 50  # merged log entries deleted per command (a delete costs ~1-3 ms per entry on SecantusDB)


@dataclass(frozen=True)
class StoredDocument:
    """What is stored of one document: the snapshot (None before the first), its rev, and the log after it."""

    snapshot: bytes | None
    rev: int
    entry_ids: tuple[str, ...]
    updates: tuple[bytes, ...]


class DocumentStore:
    """Appends updates durably, reads a document back, and swaps merged log entries for a snapshot."""

    def __init__(self, db: Database, cipher: Cipher, batch_interval: float = 0.0) -> None:
        self._updates = db["worksheet_updates"]
        self._snapshots = db["worksheet_snapshots"]
        self._inserts = GroupInsert(self._updates, max_batch=MAX_BATCH, max_queued=MAX_QUEUED,
                                    min_interval=batch_interval)
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        """A document's log entries; the oldest entries (the idle compaction sweep)."""
        await self._updates.create_index([("assignmentId", ASCENDING), ("_id", ASCENDING)])
        await self._updates.create_index([("at", ASCENDING)])

    async def drain(self) -> None:
        """Wait for queued appends (shutdown)."""
        await self._inserts.drain()

    @property
    def busy(self) -> bool:
        """An append now would be refused (Backlogged): too many are waiting for the database."""
        return self._inserts.backlogged

    async def append(self, assignment_id: str, update: bytes, now: datetime) -> str:
        """Write one update to the log; returns its entry id once it is durable (raises Backlogged when too
        many wait). Appends of every document share the group commit: one insert command per batch."""
        entry_id = new_id()
        sealed = self._cipher.seal(update, f"{assignment_id}:{entry_id}".encode()).to_doc()
        await self._inserts.insert({"_id": entry_id, "assignmentId": assignment_id, "u": sealed, "at": now})
        return entry_id

    async def discard(self, assignment_id: str, entry_id: str) -> None:
        """Delete one log entry (an append refused after it was stored: the document was locked meanwhile)."""
        await self._updates.delete_one({"_id": entry_id, "assignmentId": assignment_id})

    async def load(self, assignment_id: str) -> StoredDocument:
        """The snapshot and every log entry of a document (an undecryptable one is logged and skipped)."""
        snapshot = await self._snapshots.find_one({"_id": assignment_id})
        cursor = self._updates.find({"assignmentId": assignment_id}).sort([("assignmentId", ASCENDING),
                                                                           ("_id", ASCENDING)])
        ids: list[str] = []
        updates: list[bytes] = []
        async for doc in cursor:
            opened = self._open(doc["u"], f"{assignment_id}:{doc['_id']}")
            if opened is not None:
                ids.append(doc["_id"])
                updates.append(opened)
        state = self._open(snapshot["s"], assignment_id) if snapshot else None
        return StoredDocument(state, snapshot["rev"] if snapshot else 0, tuple(ids), tuple(updates))

    def _open(self, sealed: Doc, aad: str) -> bytes | None:
        try:
            return self._cipher.open(Sealed.from_doc(sealed), aad.encode())
        except DecryptionError as error:
            log.warning("worksheet document %s cannot be decrypted: %s", aad, error)
            return None

    async def replace_snapshot(self, assignment_id: str, state: bytes, rev: int, merged_ids: tuple[str, ...],
                               now: datetime) -> bool:
        """Store `state` as snapshot rev+1 if the snapshot is still at `rev`, then delete the merged entries."""
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
        for start in range(0, len(merged_ids), DELETE_CHUNK):  # short commands: appends go on in between
            await self._updates.delete_many({"_id": {"$in": list(merged_ids[start:start + DELETE_CHUNK])}})
        return True

    async def log_length(self, assignment_id: str) -> int:
        """How many log entries a document has (tests, benchmark)."""
        return await self._updates.count_documents({"assignmentId": assignment_id})

    async def idle_documents(self, before: datetime, limit: int) -> list[str]:
        """Documents with a log entry older than `before` (compacted on idle)."""
        # No sort: on SecantusDB a sorted read fetches every match before the limit (docs/storage.md).
        cursor = self._updates.find({"at": {"$lt": before}}, {"assignmentId": 1}).limit(limit * 50)
        return list(dict.fromkeys([doc["assignmentId"] async for doc in cursor]))[:limit]
