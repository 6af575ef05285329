"""`meeting_audit` (append-only: no update or delete exists) and `meeting_recordings`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING

from stores.group_commit import GroupInsert
from stores.meetings.meetings import ms
from stores.mongo import Database, Doc, new_id

AUDIT_LIMIT = 1000  # entries `meeting:audit` returns at most


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to whom in which meeting, and when."""

    id: str
    meeting_id: str
    actor_id: str | None
    action: str
    target_id: str | None
    at: datetime


@dataclass(frozen=True)
class Recording:
    """One recording of a meeting and the consents it started with."""

    id: str
    meeting_id: str
    started_at: datetime
    stopped_at: datetime | None
    started_by: str
    consents: tuple[str, ...]
    stop_reason: str | None


def _recording(doc: Doc) -> Recording:
    return Recording(id=doc["_id"], meeting_id=doc["meetingId"], started_at=doc["startedAt"],
                     stopped_at=doc.get("stoppedAt"), started_by=doc["startedBy"],
                     consents=tuple(doc.get("consents") or ()), stop_reason=doc.get("stopReason"))


class AuditStore:
    """The audit log: entries are only ever inserted."""

    def __init__(self, db: Database) -> None:
        self._entries = db["meeting_audit"]
        self._inserts = GroupInsert(self._entries)  # the entries of many joins at once: one commit per batch

    async def ensure_indexes(self) -> None:
        """Create the index the listing relies on."""
        await self._entries.create_index([("meetingId", ASCENDING), ("_id", ASCENDING)])

    async def append(self, meeting_id: str, actor_id: str | None, action: str, target_id: str | None,
                     at: datetime) -> None:
        """Write one entry (durably, before the action is answered; with the others of its batch, one commit)."""
        await self._inserts.insert({"_id": new_id(), "meetingId": meeting_id, "actorId": actor_id,
                                        "action": action, "targetId": target_id, "at": ms(at)})

    async def of_meeting(self, meeting_id: str) -> list[AuditEntry]:
        """A meeting's entries, oldest first."""
        cursor = self._entries.find({"meetingId": meeting_id}).sort("_id", ASCENDING).limit(AUDIT_LIMIT)
        return [AuditEntry(id=doc["_id"], meeting_id=doc["meetingId"], actor_id=doc.get("actorId"),
                           action=doc["action"], target_id=doc.get("targetId"), at=doc["at"])
                async for doc in cursor]


class RecordingStore:
    """Named queries on `meeting_recordings`."""

    def __init__(self, db: Database) -> None:
        self._recordings = db["meeting_recordings"]

    async def ensure_indexes(self) -> None:
        """Create the index the listing relies on."""
        await self._recordings.create_index([("meetingId", ASCENDING), ("startedAt", ASCENDING)])

    async def insert(self, recording_id: str, meeting_id: str, started_by: str, consents: list[str],
                     now: datetime) -> Recording:
        """Store a started recording."""
        doc = {"_id": recording_id, "meetingId": meeting_id, "startedAt": ms(now), "startedBy": started_by,
               "consents": consents}
        await self._recordings.insert_one(doc)
        return _recording(doc)

    async def stop(self, recording_id: str, now: datetime, reason: str) -> Recording | None:
        """Mark a recording stopped (once)."""
        await self._recordings.update_one({"_id": recording_id, "stoppedAt": None},
                                          {"$set": {"stoppedAt": ms(now), "stopReason": reason}})
        doc = await self._recordings.find_one({"_id": recording_id})
        return _recording(doc) if doc else None

    async def of_meeting(self, meeting_id: str) -> list[Recording]:
        """A meeting's recordings, oldest first."""
        cursor = self._recordings.find({"meetingId": meeting_id}).sort("startedAt", ASCENDING)
        return [_recording(doc) async for doc in cursor]
