"""The `meetings` collection: one document per room, changed only by compare-and-set on its status or due time."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING

from stores.group_commit import GroupUpdate
from stores.meetings.membership import Membership, Memberships
from stores.mongo import Database, Doc, KeyedReads, due_by, insert_or_existing

OPEN = ("scheduled", "live")
DUE_BATCH = 50  # meetings one scheduler pass claims at most


def ms(value: datetime) -> datetime:
    """A time as BSON keeps it (milliseconds)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class MeetingRecord:
    """A stored meeting. `key` makes creation idempotent (`booking:<id>` or `request:<host>:<requestId>`);
    `attended` lists everyone who was ever admitted; `due_at` is when the scheduler must look at it next."""

    id: str
    key: str
    booking_id: str | None
    host_id: str
    participant_ids: tuple[str, ...]
    start: datetime
    end: datetime
    status: str
    title: dict[str, Any] | None
    room: str
    attended: tuple[str, ...]
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    outcome: str | None
    outcome_applied: bool
    recording_id: str | None
    quality: tuple[dict[str, Any], ...]
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def invited(self, user_id: str) -> bool:
        """True for the host and the invited participants."""
        return user_id == self.host_id or user_id in self.participant_ids

    @property
    def members(self) -> tuple[str, ...]:
        """The host, then the participants."""
        return (self.host_id, *self.participant_ids)


_FIELDS = {"booking_id": "bookingId", "host_id": "hostId", "participant_ids": "participantIds",
           "started_at": "startedAt", "ended_at": "endedAt", "duration_seconds": "durationSeconds",
           "outcome_applied": "outcomeApplied", "recording_id": "recordingId", "due_at": "dueAt",
           "created_at": "createdAt", "updated_at": "updatedAt"}
_TUPLES = ("participant_ids", "attended", "quality")


def _stored(name: str) -> str:
    return "_id" if name == "id" else _FIELDS.get(name, name)


def _record(doc: Doc) -> MeetingRecord:
    values: dict[str, Any] = {}
    for name in MeetingRecord.__dataclass_fields__:
        value = doc.get(_stored(name))
        values[name] = tuple(value or ()) if name in _TUPLES else value
    values["outcome_applied"] = bool(values["outcome_applied"])
    return MeetingRecord(**values)


def _membership(record: MeetingRecord) -> Membership:
    return Membership(record.id, record.host_id, record.participant_ids, record.booking_id)


def _with(users: tuple[str, ...], user_id: str) -> tuple[str, ...]:
    return users if user_id in users else (*users, user_id)


@dataclass(frozen=True)
class NewMeeting:
    """A meeting about to be stored (scheduled)."""

    id: str
    key: str
    booking_id: str | None
    host_id: str
    participant_ids: tuple[str, ...]
    start: datetime
    end: datetime
    title: dict[str, Any] | None
    room: str
    due_at: datetime | None
    created_at: datetime


class MeetingStore:
    """Named queries on `meetings`."""

    def __init__(self, db: Database, members: Memberships | None = None) -> None:
        self._meetings = db["meetings"]
        self._reads = KeyedReads(self._meetings)  # the joins and admissions of a burst read their meetings together
        self._updates = GroupUpdate(self._meetings)  # and record their arrivals together (meetings are never deleted)
        # who hosts and who is invited (never changes): kept in memory (and Redis)
        self._members = members if members is not None else Memberships()

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._meetings.create_index([("key", ASCENDING)], unique=True)
        await self._meetings.create_index([("members", ASCENDING), ("start", ASCENDING), ("_id", ASCENDING)])
        await self._meetings.create_index([("start", ASCENDING), ("_id", ASCENDING)])
        await self._meetings.create_index([("dueAt", ASCENDING)])

    async def insert(self, new: NewMeeting) -> tuple[MeetingRecord, bool]:
        """Store a scheduled meeting; an existing `key` returns the first one and created=False."""
        doc: Doc = {_stored(name): value for name, value in vars(new).items()}
        doc.update({"participantIds": list(new.participant_ids), "members": [new.host_id, *new.participant_ids],
                    "status": "scheduled", "attended": [], "quality": [], "outcomeApplied": False,
                    "updatedAt": new.created_at, "start": ms(new.start), "end": ms(new.end),
                    "createdAt": ms(new.created_at)})
        stored, created = await insert_or_existing(self._meetings, doc, {"key": new.key})
        return await self._remember(_record(stored)), created

    async def get(self, meeting_id: str) -> MeetingRecord | None:
        """One meeting by id."""
        doc = await self._reads.one(meeting_id)
        return await self._remember(_record(doc)) if doc else None

    async def known(self, meeting_id: str) -> Membership | None:
        """The meeting's host and invited users when this process or another read it before (no database read)."""
        return await self._members.get(meeting_id)

    async def _remember(self, record: MeetingRecord) -> MeetingRecord:
        await self._members.add(_membership(record))
        return record

    async def by_key(self, key: str) -> MeetingRecord | None:
        """The meeting created under an idempotency key."""
        doc = await self._meetings.find_one({"key": key})
        return _record(doc) if doc else None

    async def related(self, user_id: str, candidates: frozenset[str]) -> set[str]:
        """Which of `candidates` share a meeting (as host or invited, any status) with the user (a `Relations`
        source): the user's meetings through the `members` index, their members only. A second condition on
        `members` (`$and`, `$all`) or on `hostId`/`participantIds` would make SecantusDB scan the collection."""
        cursor = self._meetings.find({"members": user_id}, {"members": 1})
        return {member async for doc in cursor for member in doc["members"] if member in candidates}

    async def page(self, member: str | None, status: str | None, start_from: datetime | None,
                   start_to: datetime | None, after: tuple[datetime, str] | None, limit: int) -> list[MeetingRecord]:
        """Meetings of a member (all when None) by start then id, after a cursor position."""
        query: Doc = {} if member is None else {"members": member}
        bounds: Doc = {}
        if start_from is not None:
            bounds["$gte"] = start_from
        if start_to is not None:
            bounds["$lt"] = start_to
        if after is not None:
            bounds["$gte"] = max(after[0], start_from) if start_from else after[0]
        if bounds:
            query["start"] = bounds
        found: list[MeetingRecord] = []
        cursor = self._meetings.find(query).sort([("start", ASCENDING), ("_id", ASCENDING)])
        async for doc in cursor:
            record = _record(doc)
            if after is not None and (record.start, record.id) <= after:
                continue
            if status is None or record.status == status:
                found.append(record)
            if len(found) >= limit:
                break
        return found

    async def _set(self, meeting_id: str, condition: Doc, changes: dict[str, Any],
                   unset: tuple[str, ...] = ()) -> bool:
        update: Doc = {"$set": {_stored(name): value for name, value in changes.items()}}
        if unset:
            update["$unset"] = {_stored(name): "" for name in unset}
        result = await self._meetings.update_one({"_id": meeting_id, **condition}, update)
        return result.matched_count == 1

    async def move(self, meeting_id: str, start: datetime, end: datetime, due_at: datetime | None,
                   now: datetime) -> MeetingRecord | None:
        """A scheduled meeting follows its booking to a new time."""
        changes = {"start": ms(start), "end": ms(end), "due_at": due_at, "updated_at": now}
        if not await self._set(meeting_id, {"status": "scheduled"}, changes):
            return None
        return await self.get(meeting_id)

    async def cancel(self, meeting_id: str, now: datetime) -> MeetingRecord | None:
        """scheduled/live -> cancelled (its booking was cancelled or declined)."""
        if not await self._set(meeting_id, {"status": {"$in": list(OPEN)}},
                               {"status": "cancelled", "ended_at": now, "updated_at": now}, unset=("due_at",)):
            return None
        return await self.get(meeting_id)

    async def arrive(self, record: MeetingRecord, user_id: str, live_at: datetime | None) -> MeetingRecord:
        """Remember that `user_id` was in the meeting and, with `live_at`, make a scheduled meeting live (host and a
        participant are in) in the same write; the record with both (others may have changed it meanwhile). The
        arrivals of a burst are written together."""
        attended = {"$addToSet": {"attended": user_id}}
        if live_at is not None:
            changes: dict[str, Any] = {"status": "live", "started_at": ms(live_at), "updated_at": ms(live_at)}
            update = {"$set": {_stored(name): value for name, value in changes.items()}, **attended}
            if await self._updates.set_if({"_id": record.id, "status": "scheduled"}, update):
                return replace(record, attended=_with(record.attended, user_id), **changes)
        if user_id in record.attended:
            return record
        await self._updates.set_if({"_id": record.id}, attended)
        return replace(record, attended=_with(record.attended, user_id))

    async def end(self, record: MeetingRecord, now: datetime, outcome: str | None,
                  quality: list[dict[str, Any]], retry_at: datetime | None) -> MeetingRecord | None:
        """scheduled/live -> ended, exactly once; `retry_at` is when an unapplied outcome is tried again."""
        duration = int((now - record.started_at).total_seconds()) if record.started_at else None
        changes = {"status": "ended", "ended_at": now, "duration_seconds": duration, "outcome": outcome,
                   "outcome_applied": outcome is None, "quality": quality, "due_at": retry_at, "updated_at": now}
        if not await self._set(record.id, {"status": {"$in": list(OPEN)}}, changes, unset=("recording_id",)):
            return None
        return await self.get(record.id)

    async def claim_due(self, now: datetime, lease: timedelta) -> list[MeetingRecord]:
        """Meetings whose due time has come, each taken by this loop for `lease` (compare-and-set on dueAt)."""
        cursor = self._meetings.find({"dueAt": due_by(now)}).sort("dueAt", ASCENDING).limit(DUE_BATCH)
        claimed = []
        async for doc in cursor:
            taken = ms(now + lease)
            result = await self._meetings.update_one({"_id": doc["_id"], "dueAt": doc["dueAt"]},
                                                     {"$set": {"dueAt": taken}})
            if result.matched_count == 1:
                claimed.append(_record({**doc, "dueAt": taken}))
        return claimed

    async def set_due(self, record: MeetingRecord, due_at: datetime | None) -> bool:
        """Next time the scheduler looks at the meeting (None: never), if the claim still holds."""
        if due_at is None:
            result = await self._meetings.update_one({"_id": record.id, "dueAt": record.due_at},
                                                     {"$unset": {"dueAt": ""}})
        else:
            result = await self._meetings.update_one({"_id": record.id, "dueAt": record.due_at},
                                                     {"$set": {"dueAt": ms(due_at)}})
        return result.matched_count == 1

    async def outcome_applied(self, meeting_id: str) -> None:
        """The booking took the meeting's outcome: nothing left for the scheduler."""
        await self._meetings.update_one({"_id": meeting_id}, {"$set": {"outcomeApplied": True},
                                                              "$unset": {"dueAt": ""}})

    async def swap_recording(self, meeting_id: str, expected: str | None, recording_id: str | None) -> bool:
        """Start (None -> id) or stop (id -> None) the meeting's recording, exactly once."""
        query: Doc = {"_id": meeting_id, "status": {"$in": list(OPEN)}} if expected is None else {"_id": meeting_id}
        query["recordingId"] = expected
        update: Doc = {"$set": {"recordingId": recording_id}}
        return (await self._meetings.update_one(query, update)).matched_count == 1
