"""The `worksheet_assignments` collection: who does which worksheet, its status, and (sealed) what was answered.

Responses frozen at submission, the score, and feedback and clarification texts are health data: they are
stored only as AES-256-GCM ciphertext bound to the assignment id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING

from stores.crypto import Cipher, DecryptionError, Sealed
from stores.mongo import Database, Doc, insert_or_existing

log = logging.getLogger("careline.worksheets")

OPEN = ("assigned", "in_progress")  # statuses in which the document may still change
PARTIES = {"client": "clientId", "therapist": "therapistId"}


@dataclass(frozen=True)
class Note:
    """One entry of the feedback or clarification thread (text opened)."""

    id: str
    author_id: str
    field_id: str | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Score:
    """An instrument's total and severity band."""

    instrument: str
    total: int
    max: int
    severity: str


@dataclass(frozen=True)
class Assignment:
    """A stored assignment, opened."""

    id: str
    worksheet_id: str
    client_id: str
    therapist_id: str
    status: str
    due_at: datetime | None
    progress: float
    request_id: str
    fingerprint: str
    assigned_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    reviewed_at: datetime | None = None
    responses: dict[str, Any] | None = None
    score: Score | None = None
    feedback: tuple[Note, ...] = field(default=())
    clarifications: tuple[Note, ...] = field(default=())

    def party(self, user_id: str) -> bool:
        """True for the assigned client and the assigning therapist."""
        return user_id in (self.client_id, self.therapist_id)

    @property
    def editable(self) -> bool:
        """The document may still change (not submitted)."""
        return self.status in OPEN


@dataclass(frozen=True)
class Outcome:
    """What analytics needs of one assignment (the score opened)."""

    client_id: str
    status: str
    assigned_at: datetime
    due_at: datetime | None
    submitted_at: datetime | None
    assignment_id: str
    score: Score | None


class AssignmentStore:
    """Named queries on `worksheet_assignments`; seals on the way in, opens on the way out."""

    def __init__(self, db: Database, cipher: Cipher) -> None:
        self._assignments = db["worksheet_assignments"]
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        """Idempotent assigning; each party's assignments newest first; a worksheet's assignments."""
        await self._assignments.create_index([("therapistId", ASCENDING), ("requestId", ASCENDING)], unique=True)
        await self._assignments.create_index([("clientId", ASCENDING), ("_id", DESCENDING)])
        await self._assignments.create_index([("therapistId", ASCENDING), ("_id", DESCENDING)])
        await self._assignments.create_index([("worksheetId", ASCENDING)])

    # -- sealing ---------------------------------------------------------------------------------

    def _seal(self, value: Any, assignment_id: str) -> Doc:
        return self._cipher.seal(orjson.dumps(value), assignment_id.encode()).to_doc()

    def _open(self, sealed: Doc | None, assignment_id: str) -> Any:
        if sealed is None:
            return None
        try:
            return orjson.loads(self._cipher.open(Sealed.from_doc(sealed), assignment_id.encode()))
        except DecryptionError as error:
            log.warning("assignment %s cannot be decrypted: %s", assignment_id, error)
            return None

    def _note(self, doc: Doc, assignment_id: str) -> Note:
        text = self._open(doc["text"], f"{assignment_id}:{doc['id']}")
        return Note(id=doc["id"], author_id=doc["authorId"], field_id=doc.get("fieldId"), text=text or "",
                    created_at=doc["createdAt"])

    def _score(self, sealed: Doc | None, assignment_id: str) -> Score | None:
        opened = self._open(sealed, assignment_id)
        return Score(**opened) if opened else None

    def _assignment(self, doc: Doc) -> Assignment:
        ident = doc["_id"]
        return Assignment(
            id=ident, worksheet_id=doc["worksheetId"], client_id=doc["clientId"], therapist_id=doc["therapistId"],
            status=doc["status"], due_at=doc.get("dueAt"), progress=doc.get("progress", 0.0),
            request_id=doc["requestId"], fingerprint=doc["fingerprint"], assigned_at=doc["assignedAt"],
            updated_at=doc["updatedAt"], submitted_at=doc.get("submittedAt"), reviewed_at=doc.get("reviewedAt"),
            responses=self._open(doc.get("responses"), ident), score=self._score(doc.get("score"), ident),
            feedback=tuple(self._note(each, ident) for each in doc.get("feedback", [])),
            clarifications=tuple(self._note(each, ident) for each in doc.get("clarifications", [])))

    # -- writing ---------------------------------------------------------------------------------

    async def insert(self, new: Assignment) -> tuple[Assignment, bool]:
        """Store a new assignment; a repeated (therapist, requestId) returns the first one and False."""
        doc: Doc = {"_id": new.id, "worksheetId": new.worksheet_id, "clientId": new.client_id,
                    "therapistId": new.therapist_id, "status": new.status, "dueAt": new.due_at,
                    "progress": new.progress, "requestId": new.request_id, "fingerprint": new.fingerprint,
                    "assignedAt": new.assigned_at, "updatedAt": new.updated_at, "feedback": [],
                    "clarifications": []}
        stored, created = await insert_or_existing(self._assignments, doc,
                                                   {"therapistId": new.therapist_id, "requestId": new.request_id})
        return self._assignment(stored), created

    async def start_if_assigned(self, assignment_id: str, now: datetime) -> bool:
        """assigned -> in_progress (the first edit); False when it had already moved on."""
        result = await self._assignments.update_one({"_id": assignment_id, "status": "assigned"},
                                                    {"$set": {"status": "in_progress", "updatedAt": now}})
        return result.modified_count == 1

    async def set_progress(self, assignment_id: str, progress: float, now: datetime) -> bool:
        """Record progress while the assignment is open; False when it is not (or unchanged)."""
        result = await self._assignments.update_one(
            {"_id": assignment_id, "status": {"$in": list(OPEN)}, "progress": {"$ne": progress}},
            {"$set": {"progress": progress, "updatedAt": now}})
        return result.modified_count == 1

    async def submit_if_open(self, assignment_id: str, responses: dict[str, Any], score: Score | None,
                             progress: float, now: datetime) -> bool:
        """Open -> submitted with the frozen responses and score; False when already submitted."""
        changes: Doc = {"status": "submitted", "submittedAt": now, "updatedAt": now, "progress": progress,
                        "responses": self._seal(responses, assignment_id),
                        "score": self._seal(vars(score), assignment_id) if score else None}
        result = await self._assignments.update_one({"_id": assignment_id, "status": {"$in": list(OPEN)}},
                                                    {"$set": changes})
        return result.modified_count == 1

    async def append_note(self, assignment_id: str, thread: str, note: Note, now: datetime) -> None:
        """Add an entry to the `feedback` or `clarifications` thread (its text sealed)."""
        entry = {"id": note.id, "authorId": note.author_id, "fieldId": note.field_id, "createdAt": note.created_at,
                 "text": self._seal(note.text, f"{assignment_id}:{note.id}")}
        await self._assignments.update_one({"_id": assignment_id},
                                           {"$push": {thread: entry}, "$set": {"updatedAt": now}})

    async def review_if_submitted(self, assignment_id: str, now: datetime) -> bool:
        """submitted -> reviewed."""
        result = await self._assignments.update_one({"_id": assignment_id, "status": "submitted"},
                                                    {"$set": {"status": "reviewed", "reviewedAt": now,
                                                              "updatedAt": now}})
        return result.modified_count == 1

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, assignment_id: str) -> Assignment | None:
        """One assignment by id."""
        doc = await self._assignments.find_one({"_id": assignment_id})
        return self._assignment(doc) if doc else None

    async def page(self, party: str, user_id: str, status: str | None, before_id: str | None,
                   limit: int) -> list[Assignment]:
        """One party's assignments, newest first, before a cursor id."""
        query: Doc = {PARTIES[party]: user_id}
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        if status is not None:
            query["status"] = status
        cursor = self._assignments.find(query).sort([(PARTIES[party], ASCENDING), ("_id", DESCENDING)]).limit(limit)
        return [self._assignment(doc) async for doc in cursor]

    async def assigned_to(self, worksheet_id: str, client_id: str) -> bool:
        """Whether a worksheet was assigned to a client."""
        return await self._assignments.find_one({"worksheetId": worksheet_id, "clientId": client_id},
                                                {"_id": 1}) is not None

    async def related(self, user_id: str, candidates: frozenset[str]) -> set[str]:
        """Which of `candidates` share an assignment (as its client or its therapist) with the user (a
        `Relations` source). One read through the `clientId` index: every assignment relating the user to a
        candidate has one of them as its client, so `clientId` among them finds it; the pairs are checked
        here (an `$or` on both sides would make SecantusDB scan the collection, docs/storage.md)."""
        clients = sorted(candidates | {user_id})
        cursor = self._assignments.find({"clientId": {"$in": clients}}, {"clientId": 1, "therapistId": 1})
        found: set[str] = set()
        async for doc in cursor:
            client, therapist = doc["clientId"], doc["therapistId"]
            if client == user_id and therapist in candidates:
                found.add(therapist)
            elif therapist == user_id and client in candidates:
                found.add(client)
        return found

    async def outcomes(self, worksheet_id: str) -> list[Outcome]:
        """Every assignment of a worksheet, as analytics reads it: one query, oldest first."""
        projection = {"clientId": 1, "status": 1, "assignedAt": 1, "dueAt": 1, "submittedAt": 1, "score": 1}
        cursor = self._assignments.find({"worksheetId": worksheet_id}, projection).sort("_id", ASCENDING)
        return [Outcome(client_id=doc["clientId"], status=doc["status"], assigned_at=doc["assignedAt"],
                        due_at=doc.get("dueAt"), submitted_at=doc.get("submittedAt"), assignment_id=doc["_id"],
                        score=self._score(doc.get("score"), doc["_id"]))
                async for doc in cursor]
