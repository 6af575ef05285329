"""The `bookings` collection and `booking_claims`, the time units a booking holds (unique per therapist)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from errors import Conflict
from stores.mongo import Database, Doc, insert_or_existing

ACTIVE = ("pending", "confirmed")
LONGEST_HOLD = timedelta(minutes=240 + 240)  # session + buffer upper bounds: how far back a booking can reach
CAS_ATTEMPTS = 20  # each failed compare-and-set means another change of the same booking got through


@dataclass(frozen=True)
class BookingRecord:
    """A stored booking (policy and refund in snake_case; `note` still sealed).

    `rev` counts the changes of the booking (None for one stored before it existed): every update is a
    compare-and-set on it.
    """

    id: str
    client_id: str
    therapist_id: str
    start: datetime
    end: datetime
    status: str
    policy: dict[str, Any]
    buffer_minutes: int
    request_id: str
    note: dict[str, Any] | None
    cancelled_by: str | None
    reason: str | None
    refund: dict[str, Any] | None
    payment_status: str
    meeting_id: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    rev: int | None = None

    def party(self, user_id: str) -> bool:
        """True when `user_id` is the client or the therapist of this booking."""
        return user_id in (self.client_id, self.therapist_id)


@dataclass(frozen=True)
class BookingFilter:
    """What `booking:list` narrows to: a status and a range of start times (each optional)."""

    status: str | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None


_PARTIES = {"client": "clientId", "therapist": "therapistId"}
_FIELDS = {"client_id": "clientId", "therapist_id": "therapistId", "buffer_minutes": "bufferMinutes",
           "request_id": "requestId", "cancelled_by": "cancelledBy", "payment_status": "paymentStatus",
           "meeting_id": "meetingId", "expires_at": "expiresAt", "created_at": "createdAt",
           "updated_at": "updatedAt"}


@dataclass(frozen=True)
class NewBooking:
    """A booking about to be stored (pending, its time already claimed)."""

    id: str
    client_id: str
    therapist_id: str
    start: datetime
    end: datetime
    policy: dict[str, Any]
    buffer_minutes: int
    request_id: str
    note: dict[str, Any] | None
    expires_at: datetime
    created_at: datetime


def to_doc(values: dict[str, Any]) -> Doc:
    """Python field names -> stored names."""
    return {("_id" if key == "id" else _FIELDS.get(key, key)): value for key, value in values.items()}


def _record(doc: Doc) -> BookingRecord:
    names = {stored: name for name, stored in _FIELDS.items()}
    values: dict[str, Any] = {names.get(key, key): value for key, value in doc.items() if key != "_id"}
    fields = BookingRecord.__dataclass_fields__
    known: dict[str, Any] = {k: values.get(k) for k in fields if k != "id"}
    return BookingRecord(id=doc["_id"], **known)


def _as_stored(value: Any) -> Any:
    """A value as BSON gives it back (datetimes keep milliseconds)."""
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _is_duplicate(error: BulkWriteError) -> bool:
    return any(item.get("code") == 11000 for item in error.details.get("writeErrors", []))


class BookingStore:
    """Named queries on `bookings` and `booking_claims`."""

    def __init__(self, db: Database) -> None:
        self._bookings = db["bookings"]
        self._claims = db["booking_claims"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._bookings.create_index([("clientId", ASCENDING), ("requestId", ASCENDING)], unique=True)
        for party in ("clientId", "therapistId"):
            await self._bookings.create_index([(party, ASCENDING), ("start", ASCENDING), ("_id", ASCENDING)])
        await self._bookings.create_index([("start", ASCENDING), ("_id", ASCENDING)])
        await self._bookings.create_index([("status", ASCENDING), ("expiresAt", ASCENDING)])
        await self._bookings.create_index([("status", ASCENDING), ("paymentStatus", ASCENDING),
                                           ("updatedAt", ASCENDING)])
        await self._claims.create_index([("therapistId", ASCENDING), ("unit", ASCENDING)], unique=True)
        await self._claims.create_index([("bookingId", ASCENDING), ("unit", ASCENDING)])
        await self._claims.create_index([("settled", ASCENDING), ("at", ASCENDING)])

    # -- claims ------------------------------------------------------------------------------------

    async def claim(self, therapist_id: str, booking_id: str, units: list[int], now: datetime) -> None:
        """Take every unit for `booking_id` (unsettled) or none of them: `Conflict` when one is held."""
        if not units:
            return
        docs = [{"therapistId": therapist_id, "unit": unit, "bookingId": booking_id, "settled": False, "at": now}
                for unit in units]
        try:
            await self._claims.insert_many(docs, ordered=True)
        except (BulkWriteError, DuplicateKeyError) as error:
            await self.release(booking_id, units)
            if isinstance(error, BulkWriteError) and not _is_duplicate(error):
                raise
            raise Conflict("That time is no longer available") from None

    async def settle(self, booking_id: str, units: list[int] | None = None, settled: bool = True,
                     now: datetime | None = None) -> None:
        """Mark claims as backed by the booking's current time (or, with settled=False, in doubt since `now`)."""
        query: Doc = {"bookingId": booking_id}
        if units is not None:
            query["unit"] = {"$in": units}
        changes: Doc = {"settled": settled} if settled else {"settled": False, "at": now}
        await self._claims.update_many(query, {"$set": changes})

    async def release(self, booking_id: str, units: list[int] | None = None) -> None:
        """Give units (all of the booking's when None) back."""
        query: Doc = {"bookingId": booking_id}
        if units is not None:
            query["unit"] = {"$in": units}
        await self._claims.delete_many(query)

    async def unsettled_bookings(self, before: datetime, limit: int = 100) -> list[str]:
        """Booking ids with claims left in doubt since before `before` (a process died mid-change)."""
        cursor = self._claims.find({"settled": False, "at": {"$lt": before}}, {"bookingId": 1}).limit(limit * 20)
        return list(dict.fromkeys([doc["bookingId"] async for doc in cursor]))[:limit]

    async def claimed_units(self, booking_id: str) -> list[int]:
        """The units a booking holds right now."""
        cursor = self._claims.find({"bookingId": booking_id}, {"unit": 1}).sort("unit", ASCENDING)
        return [doc["unit"] async for doc in cursor]

    # -- bookings ----------------------------------------------------------------------------------

    async def insert(self, booking: NewBooking) -> tuple[BookingRecord, bool]:
        """Insert a pending booking; a repeated (clientId, requestId) returns the first one and created=False."""
        values = {**vars(booking), "status": "pending", "payment_status": "none", "updated_at": booking.created_at}
        doc = {**to_doc(values), "rev": 0}
        stored, created = await insert_or_existing(
            self._bookings, doc, {"clientId": doc["clientId"], "requestId": doc["requestId"]})
        return _record(stored), created

    async def get(self, booking_id: str) -> BookingRecord | None:
        """One booking by id."""
        doc = await self._bookings.find_one({"_id": booking_id})
        return _record(doc) if doc else None

    async def related(self, user_id: str, candidates: frozenset[str]) -> set[str]:
        """Which of `candidates` have a booking (any status) with the user (a `Relations` source)."""
        others, found = sorted(candidates), set()
        for mine, theirs in (("clientId", "therapistId"), ("therapistId", "clientId")):  # two indexed reads, no $or
            cursor = self._bookings.find({mine: user_id, theirs: {"$in": others}}, {theirs: 1})
            found |= {doc[theirs] async for doc in cursor}
        return found

    async def by_request(self, client_id: str, request_id: str) -> BookingRecord | None:
        """The booking a client created with `request_id`."""
        doc = await self._bookings.find_one({"clientId": client_id, "requestId": request_id})
        return _record(doc) if doc else None

    async def any_between(self, therapist_id: str, client_id: str) -> bool:
        """Whether the therapist and the client have (or had) a booking together, in any status."""
        doc = await self._bookings.find_one({"clientId": client_id, "therapistId": therapist_id}, {"_id": 1})
        return doc is not None

    async def holds(self, therapist_id: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
        """(start, end, bufferMinutes) of every pending or confirmed booking that can reach into [start, end)."""
        # Status is checked here, not in the query: a second operator field would keep SecantusDB from
        # walking the (therapistId, start) index range and make it read every booking of the therapist.
        query = {"therapistId": therapist_id, "start": {"$gte": start - LONGEST_HOLD, "$lt": end + LONGEST_HOLD}}
        cursor = self._bookings.find(query, {"start": 1, "end": 1, "bufferMinutes": 1, "status": 1})
        return [(doc["start"], doc["end"], doc["bufferMinutes"]) async for doc in cursor if doc["status"] in ACTIVE]

    async def confirm_if_pending(self, record: BookingRecord, now: datetime) -> BookingRecord | None:
        """pending -> confirmed while the session has not started; None when that no longer holds."""
        return await self._update(record.id, ("pending",), {"status": "confirmed", "updated_at": now},
                                  {"start": {"$gt": now}}, unset=("expires_at",), current=record)

    async def decline_if_pending(self, booking_id: str, reason: str | None, now: datetime, *,
                                 expired_only: bool = False, current: BookingRecord | None = None,
                                 ) -> BookingRecord | None:
        """pending -> declined (with `expired_only`, only once its confirmation deadline has passed)."""
        extra = {"expiresAt": {"$lte": now}} if expired_only else None
        return await self._update(booking_id, ("pending",), {"status": "declined", "reason": reason,
                                                             "updated_at": now}, extra, unset=("expires_at",),
                                  current=current)

    async def cancel_if_active(self, record: BookingRecord, by: str, reason: str | None, refund_percent: int,
                               now: datetime) -> BookingRecord | None:
        """pending/confirmed -> cancelled while the session has not ended, with the refund it earns."""
        changes = {"status": "cancelled", "cancelled_by": by, "reason": reason, "updated_at": now,
                   "refund": {"percent": refund_percent, "amount": None}}
        return await self._update(record.id, ACTIVE, changes, {"end": {"$gt": now}}, unset=("expires_at",),
                                  current=record)

    async def set_payment_status(self, booking_id: str, status: str, after: tuple[str, ...],
                                 refund_amount: int | None, now: datetime) -> BookingRecord | None:
        """Set `paymentStatus` (and the refunded amount) while the current one is in `after`; None otherwise."""
        record = await self.get(booking_id)
        if record is None:
            return None
        changes: dict[str, Any] = {"payment_status": status, "updated_at": now}
        if refund_amount is not None and record.refund is not None:
            changes["refund"] = {**record.refund, "amount": refund_amount}
        every = (*ACTIVE, "declined", "cancelled", "completed", "no_show")
        return await self._update(booking_id, every, changes, {"paymentStatus": {"$in": list(after)}},
                                  current=record)

    async def move_if_unmoved(self, record: BookingRecord, start: datetime, end: datetime,
                              expires_at: datetime | None, now: datetime) -> BookingRecord | None:
        """Move an active booking to [start, end) unless another change moved it since `record` was read."""
        changes: dict[str, Any] = {"start": start, "end": end, "updated_at": now}
        if expires_at is not None:
            changes["expires_at"] = expires_at
        return await self._update(record.id, ACTIVE, changes, {"start": record.start}, current=record)

    async def set_meeting(self, booking_id: str, meeting_id: str, now: datetime) -> BookingRecord | None:
        """Show the booking's meeting id (once); None when it already does or the booking is gone."""
        record = await self.get(booking_id)
        if record is None or record.meeting_id == meeting_id:
            return None
        return await self._update(booking_id, (record.status,), {"meeting_id": meeting_id, "updated_at": now},
                                  current=record)

    async def finish_if_confirmed(self, record: BookingRecord, status: str, now: datetime) -> BookingRecord | None:
        """confirmed -> `status` (completed or no_show: the session's outcome); None when not confirmed."""
        return await self._update(record.id, ("confirmed",), {"status": status, "updated_at": now}, current=record)

    async def _update(self, booking_id: str, statuses: tuple[str, ...], changes: dict[str, Any],
                     extra: Doc | None = None, unset: tuple[str, ...] = (),
                     current: BookingRecord | None = None) -> BookingRecord | None:
        """Apply `changes` only while the booking is in one of `statuses` (and matches `extra`); the new record.

        A compare-and-set on `rev` starting from `current` (read here when not given): atomic like
        find_one_and_update and its exact post-image, but an `_id` point write on SecantusDB, where
        findAndModify scans the whole collection (docs/storage.md). Another change in between costs a retry.
        """
        record = current if current is not None else await self.get(booking_id)
        for _ in range(CAS_ATTEMPTS):
            if record is None or record.status not in statuses:
                return None
            if await self._swap(record, statuses, changes, extra or {}, unset):
                stored: dict[str, Any] = {name: _as_stored(value) for name, value in changes.items()}
                stored.update(dict.fromkeys(unset))
                return replace(record, **stored, rev=(record.rev or 0) + 1)
            latest = await self.get(booking_id)
            if latest is not None and latest.rev == record.rev:
                return None  # unchanged since read, so `extra` is what does not hold
            record = latest
        raise Conflict("The booking keeps changing; try again")

    async def _swap(self, record: BookingRecord, statuses: tuple[str, ...], changes: dict[str, Any], extra: Doc,
                    unset: tuple[str, ...]) -> bool:
        """One conditional write of `record` at its `rev`; `_id` comes first so it is what routes the write."""
        update: Doc = {"$set": to_doc(changes), "$inc": {"rev": 1}}
        if unset:
            update["$unset"] = {_FIELDS.get(name, name): "" for name in unset}
        query = {"_id": record.id, "rev": record.rev, "status": {"$in": list(statuses)}, **extra}
        return (await self._bookings.update_one(query, update)).matched_count == 1

    async def due_expiries(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of pending bookings whose confirmation deadline has passed."""
        cursor = self._bookings.find({"status": "pending", "expiresAt": {"$lte": now}}, {"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def cancelled_while_paid(self, since: datetime, until: datetime, limit: int = 200) -> list[BookingRecord]:
        """Cancelled bookings last changed in [since, until) whose payment shows paid or partly refunded
        (billing checks their refunds); one index range per payment status."""
        found: list[BookingRecord] = []
        for payment in ("paid", "partially_refunded"):
            cursor = self._bookings.find({"status": "cancelled", "paymentStatus": payment,
                                          "updatedAt": {"$gte": since, "$lt": until}}).limit(limit)
            found.extend([_record(doc) async for doc in cursor])
        return found

    async def page(self, party: str | None, user_id: str | None, filters: BookingFilter,
                   after: tuple[datetime, str] | None, limit: int) -> list[BookingRecord]:
        """Bookings of one party (or all, for admins) by start then id, after a cursor position.

        After a cursor: the rest of its start time, then later starts (two index ranges; an `$or` would
        make SecantusDB scan the whole collection).
        """
        query: Doc = {}
        if party is not None:
            query[_PARTIES[party]] = user_id
        if filters.status:
            query["status"] = filters.status
        low, high = filters.start_from, filters.start_to
        found: list[BookingRecord] = []
        if after is not None and (low is None or low <= after[0]) and (high is None or after[0] < high):
            found = await self._sorted({**query, "start": after[0], "_id": {"$gt": after[1]}}, limit)
        bounds: Doc = {}
        if after is not None and (low is None or low <= after[0]):
            bounds["$gt"] = after[0]
        elif low is not None:
            bounds["$gte"] = low
        if high is not None:
            bounds["$lt"] = high
        if bounds:
            query["start"] = bounds
        if len(found) < limit:
            found += await self._sorted(query, limit - len(found))
        return found

    async def _sorted(self, query: Doc, limit: int) -> list[BookingRecord]:
        cursor = self._bookings.find(query).sort([("start", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [_record(doc) async for doc in cursor]
