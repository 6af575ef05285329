"""The Yjs documents of assignments: an append-only update log (`worksheet_log`) and one snapshot per document
(`worksheet_snapshots`), both stored only as AES-256-GCM ciphertext.

An update is acknowledged once it is written to the log. Appends are group-committed across documents: one log
entry per batch, `{_id, docs: [assignment ids], parts: [{i: part id, a: assignment id, u: sealed update}], at}`,
so the database writes one document (and one set of index entries) per batch, not per update (on SecantusDB a
document costs ~0.1 ms to insert with its indexes and as much to delete; a part a few µs). Each part is sealed
on its own, bound to its document and part id.

Compaction works on whole entries: it stores a new snapshot of every document some entries hold parts of, merged
with all of that document's log (a compare-and-set on the snapshot's `rev`, so two compactors never overwrite
each other: the loser reads again and merges again), and only once every one of those documents is stored
deletes the entries (handlers/worksheets/compaction.py). A
crash at any point leaves every update in a snapshot, in the log, or in both (a document is the snapshot plus
every log part of it, and Yjs applies a repeat as a no-op). Entries are never changed once written (but by
`discard`, the rare write refused after it was stored).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.crypto import Cipher, DecryptionError, Sealed
from stores.group_commit import GroupInsert
from stores.mongo import Database, Doc, find_in, new_id

log = logging.getLogger("careline.worksheets")

MAX_BATCH = 128  # updates per log entry (48 KiB at most each: an entry stays far below MongoDB's 16 MB)
MAX_QUEUED = 1024  # updates waiting to be written before new ones are refused (`unavailable`, send again)
CHUNK = 100  # documents whose log `load_many` reads per command (short commands: appends go on in between)
DELETE_CHUNK = 10  # log entries one command deletes (each has an index key per document it holds parts of)
OPEN_STEP = 64  # parts decrypted between two yields to the event loop (compaction reads thousands: appends go on)
LEGACY_LOG = "worksheet_updates"  # the log before batched entries: one document per update (adopt_legacy_log)


@dataclass(frozen=True)
class StoredDocument:
    """What is stored of one document: the snapshot (None before the first), its rev, and its logged updates
    (some may be in the snapshot already: their entries are deleted once all their documents are)."""

    snapshot: bytes | None
    rev: int
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


async def _stepped(opened: int) -> int:
    """Count one more part to decrypt, yielding to the event loop every OPEN_STEP parts (a compaction round opens
    thousands, ~15 µs each: in one go that held up every append and relay for tens of ms)."""
    if opened % OPEN_STEP == OPEN_STEP - 1:
        await asyncio.sleep(0)
    return opened + 1


class DocumentStore:
    """Appends updates durably, reads a document back, and swaps merged log entries for a snapshot."""

    def __init__(self, db: Database, cipher: Cipher, batch_interval: float = 0.0) -> None:
        self._log = db["worksheet_log"]
        self._snapshots = db["worksheet_snapshots"]
        self._legacy = db[LEGACY_LOG]
        self._inserts = GroupInsert(self._log, max_batch=MAX_BATCH, max_queued=MAX_QUEUED,
                                    min_interval=batch_interval, combine=_entry)
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        """The log entries holding a document's parts; the oldest entries (the idle compaction sweep)."""
        await self._log.create_index([("docs", ASCENDING), ("_id", ASCENDING)])
        await self._log.create_index([("at", ASCENDING)])

    async def adopt_legacy_log(self) -> int:
        """Move updates stored one document each (`worksheet_updates`, written by careline before the batched
        log) into log entries, MAX_BATCH a time; returns how many moved (startup).

        A legacy update was sealed bound to `<assignment>:<its _id>`, which is what a part with that id is bound
        to, so nothing is decrypted or sealed again. An entry is written before its legacy documents are
        deleted: a crash between the two leaves an update in both, and Yjs applies the repeat as a no-op.
        """
        moved = 0
        while legacy := [doc async for doc in self._legacy.find({}).limit(MAX_BATCH)]:
            await self._log.insert_one(_entry([{"i": doc["_id"], "a": doc["assignmentId"], "u": doc["u"],
                                                "at": doc["at"]} for doc in legacy]))
            await self._legacy.delete_many({"_id": {"$in": [doc["_id"] for doc in legacy]}})
            moved += len(legacy)
        if moved:
            log.info("moved %d worksheet updates from %s into the batched log", moved, LEGACY_LOG)
        return moved

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
        await self._log.delete_one({"_id": ref.entry_id, "parts": {"$size": 0}})

    async def load(self, assignment_id: str) -> StoredDocument:
        """The snapshot and every logged part of a document."""
        return (await self.load_many([assignment_id]))[assignment_id]

    async def load_many(self, assignment_ids: list[str]) -> dict[str, StoredDocument]:
        """`load` of many documents, reading each log entry of theirs once per CHUNK documents (compaction)."""
        loaded: dict[str, StoredDocument] = {}
        for start in range(0, len(assignment_ids), CHUNK):
            chunk = assignment_ids[start:start + CHUNK]
            snapshots = {found["_id"]: found async for found in self._snapshots.find({"_id": {"$in": chunk}})}
            updates: dict[str, list[bytes]] = {assignment_id: [] for assignment_id in chunk}
            opening = 0
            async for entry in self._log.find({"docs": {"$in": chunk}}, {"parts": 1}).sort([("_id", ASCENDING)]):
                for part in entry["parts"]:
                    if part["a"] in updates:
                        opening = await _stepped(opening)
                        opened = self._open(part["u"], f"{part['a']}:{part['i']}")
                        if opened is not None:
                            updates[part["a"]].append(opened)
            for assignment_id in chunk:
                snapshot = snapshots.get(assignment_id)
                state = self._open(snapshot["s"], assignment_id) if snapshot else None
                loaded[assignment_id] = StoredDocument(state, snapshot["rev"] if snapshot else 0,
                                                       tuple(updates[assignment_id]))
        return loaded

    async def snapshot(self, assignment_id: str) -> tuple[bytes | None, int]:
        """A document's snapshot (None before the first) and its rev."""
        found = await self._snapshots.find_one({"_id": assignment_id})
        if found is None:
            return None, 0
        return self._open(found["s"], assignment_id), found["rev"]

    async def parts_of(self, entry_ids: list[str]) -> dict[str, list[bytes]]:
        """Every part of some log entries, by document."""
        found: dict[str, list[bytes]] = {}
        opening = 0
        for entry in await find_in(self._log, "_id", entry_ids, {"parts": 1}):
            for part in entry["parts"]:
                opening = await _stepped(opening)
                opened = self._open(part["u"], f"{part['a']}:{part['i']}")
                if opened is not None:
                    found.setdefault(part["a"], []).append(opened)
        return found

    async def documents_in(self, entry_ids: list[str]) -> list[str]:
        """The documents some log entries hold parts of."""
        entries = await find_in(self._log, "_id", entry_ids, {"docs": 1})
        return list(dict.fromkeys(document for entry in entries for document in entry["docs"]))

    async def delete_entries(self, entry_ids: list[str]) -> None:
        """Delete log entries (every part of them is in its document's snapshot)."""
        for start in range(0, len(entry_ids), DELETE_CHUNK):
            await self._log.delete_many({"_id": {"$in": entry_ids[start:start + DELETE_CHUNK]}})

    async def entries_before(self, before: datetime, limit: int) -> list[str]:
        """Log entries written before `before` (compacted on idle)."""
        # No sort: on SecantusDB a sorted read fetches every match before the limit (docs/storage.md).
        return [entry["_id"] async for entry in self._log.find({"at": {"$lt": before}}, {"_id": 1}).limit(limit)]

    def _open(self, sealed: Doc, aad: str) -> bytes | None:
        try:
            return self._cipher.open(Sealed.from_doc(sealed), aad.encode())
        except DecryptionError as error:
            log.warning("worksheet document %s cannot be decrypted: %s", aad, error)
            return None

    async def replace_snapshot(self, assignment_id: str, state: bytes, rev: int, now: datetime) -> bool:
        """Store `state` as snapshot rev+1 if the snapshot is still at `rev` (False: another compactor won)."""
        doc = {"s": self._cipher.seal(state, assignment_id.encode()).to_doc(), "rev": rev + 1, "at": now}
        if rev == 0:
            try:
                await self._snapshots.insert_one({"_id": assignment_id, **doc})
            except DuplicateKeyError:
                return False
            return True
        result = await self._snapshots.update_one({"_id": assignment_id, "rev": rev}, {"$set": doc})
        return result.modified_count == 1

    async def log_length(self, assignment_id: str) -> int:
        """How many logged updates a document has (tests, benchmark)."""
        return len((await self.load(assignment_id)).updates)
