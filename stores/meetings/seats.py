"""The `meeting_seats` collection: one seat per (meeting, user), the lobby and presence state behind every join."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.group_commit import GroupInsert, GroupMarkedUpdate
from stores.meetings.mirror import SeatMirror
from stores.mongo import Database, Doc, KeyedReads

SAMPLES = 60  # stats samples a seat keeps (a rolling window, not every sample)


@dataclass(frozen=True)
class Seat:
    """A user's place in a meeting: `state` waiting | admitted | denied | kicked | left.

    `sids` are the sockets that joined with it; `away_since` is set while none of them is connected.
    """

    meeting_id: str
    user_id: str
    state: str
    sids: tuple[str, ...]
    away_since: datetime | None
    consent: bool
    muted: tuple[str, ...]
    sharing: bool
    samples: tuple[dict[str, Any], ...]
    version: int = 0


def seat_id(meeting_id: str, user_id: str) -> str:
    """The seat's key (meeting ids are hex, so the first colon separates)."""
    return f"{meeting_id}:{user_id}"


def _seat(doc: Doc) -> Seat:
    return Seat(meeting_id=doc["meetingId"], user_id=doc["userId"], state=doc["state"],
                sids=tuple(doc.get("sids") or ()), away_since=doc.get("awaySince"),
                consent=bool(doc.get("consent")), muted=tuple(doc.get("muted") or ()),
                sharing=bool(doc.get("sharing")), samples=tuple(doc.get("samples") or ()),
                version=int(doc.get("version", 0)))


class SeatStore:
    """Named queries on `meeting_seats`; state changes are compare-and-set on the version read before,
    mirrored (admitted or not) for the signal check."""

    def __init__(self, db: Database, mirror: SeatMirror) -> None:
        self._seats = db["meeting_seats"]
        self._mirror = mirror
        # the joins and admissions of a burst read their seats (one, or a meeting's) together
        self._reads = KeyedReads(self._seats)
        self._meeting_reads = KeyedReads(self._seats, "meetingId")
        self._inserts = GroupInsert(self._seats)  # create them together
        # and move them together, and admit them together (never creating a seat: a refused join's is deleted)
        self._moves = GroupMarkedUpdate(self._seats, "moved")
        self._admissions = GroupMarkedUpdate(self._seats, "admission")

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._seats.create_index([("meetingId", ASCENDING)])
        await self._seats.create_index([("awaySince", ASCENDING)])

    async def get(self, meeting_id: str, user_id: str) -> Seat | None:
        """One seat."""
        doc = await self._reads.one(seat_id(meeting_id, user_id))
        return _seat(doc) if doc else None

    async def pair(self, meeting_id: str, first: str, second: str) -> tuple[Seat | None, Seat | None]:
        """Two seats of one meeting, read together (the signal check)."""
        ids = [seat_id(meeting_id, first), seat_id(meeting_id, second)]
        found = {doc["userId"]: _seat(doc) async for doc in self._seats.find({"_id": {"$in": ids}})}
        return found.get(first), found.get(second)

    async def of_meeting(self, meeting_id: str) -> list[Seat]:
        """Every seat of a meeting (one indexed read, with the other meetings' read at the same time)."""
        return [_seat(doc) for doc in await self._meeting_reads.all(meeting_id)]

    async def both_admitted(self, meeting_id: str, first: str, second: str) -> bool:
        """The fast signal check: True only when the mirror knows both seats admitted (else read `pair`)."""
        return await self._mirror.both_admitted(meeting_id, first, second)

    async def settled(self, meeting_id: str) -> None:
        """Return once this process's revocations in the meeting stop signals on every process (before an ack)."""
        await self._mirror.settled(meeting_id)

    async def remember(self, seat: Seat) -> None:
        """Put an admitted seat read from the database into the mirror."""
        if seat.state == "admitted":
            await self._mirror.admitted(seat.meeting_id, seat.version, seat.user_id)

    async def move(self, meeting_id: str, user_id: str, seen: Seat | None, state: str, sid: str | None = None,
                   changes: dict[str, Any] | None = None) -> bool:
        """Change the seat from what was read (`seen`; None: no seat yet) to `state`; False when it changed meanwhile.

        A socket id given joins the seat's sockets; arriving anywhere clears `awaySince`.
        """
        version = seen.version + 1 if seen is not None else 0
        if seen is not None and seen.state == "admitted" and state != "admitted":
            await self._mirror.revoke(meeting_id, version, user_id)
        values: Doc = {"state": state, "version": version, **(changes or {})}
        if seen is None:
            doc = {"_id": seat_id(meeting_id, user_id), "meetingId": meeting_id, "userId": user_id,
                   "sids": [sid] if sid else [], "consent": False, "muted": [], "samples": [], **values}
            try:
                await self._inserts.insert(doc)
            except DuplicateKeyError:
                return False
        else:
            update: Doc = {"$set": values, "$unset": {"awaySince": ""}}
            if sid is not None:
                update["$addToSet"] = {"sids": sid}
            if not await self._moves.set_if(
                    {"_id": seat_id(meeting_id, user_id), "state": seen.state, "version": seen.version}, update):
                return False
        if state == "admitted":
            await self._mirror.admitted(meeting_id, version, user_id)
        return True

    async def forget_new(self, meeting_id: str, user_id: str) -> None:
        """Delete the seat `move` just created from none (waiting, version 0), unless it changed since: a refused
        join leaves nothing behind."""
        await self._seats.delete_one({"_id": seat_id(meeting_id, user_id), "state": "waiting", "version": 0})

    async def admit_waiting(self, meeting_id: str, user_id: str, host_id: str) -> bool:
        """The host's admission in one write: the seat, if it is waiting in a meeting `host_id` hosts (the seat
        names its host), becomes admitted; False otherwise, nothing changed (a seat that does not exist is never
        created). The admissions of a burst are written together. Mirrored once read (`remember`)."""
        return await self._admissions.set_if(
            {"_id": seat_id(meeting_id, user_id), "state": "waiting", "hostId": host_id},
            {"$set": {"state": "admitted"}, "$inc": {"version": 1}, "$unset": {"awaySince": ""}})

    async def drop_socket(self, meeting_id: str, user_id: str, sid: str, now: datetime | None) -> None:
        """Forget a socket; with `now`, the seat is away since then (its user has no socket left in it)."""
        update: Doc = {"$pull": {"sids": sid}}
        if now is not None:
            update["$set"] = {"awaySince": now}
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)}, update)

    async def away_before(self, cutoff: datetime, limit: int = 100) -> list[Seat]:
        """Admitted seats whose sockets all dropped before `cutoff`."""
        cursor = self._seats.find({"awaySince": {"$lt": cutoff}}).limit(limit)
        return [seat async for seat in (_seat(doc) async for doc in cursor) if seat.state == "admitted"]

    async def clear_away(self, meeting_id: str, user_id: str) -> None:
        """A seat that is no longer admitted is not waited for."""
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)}, {"$unset": {"awaySince": ""}})

    async def set_consent(self, meeting_id: str, user_id: str, consent: bool) -> None:
        """Record the user's recording consent."""
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)}, {"$set": {"consent": consent}})

    async def set_muted(self, meeting_id: str, user_id: str, kind: str) -> None:
        """The host muted the user's `kind` (audio or video)."""
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)}, {"$addToSet": {"muted": kind}})

    async def set_sharing(self, meeting_id: str, user_id: str, sharing: bool) -> None:
        """The user started or stopped sharing their screen."""
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)}, {"$set": {"sharing": sharing}})

    async def add_sample(self, meeting_id: str, user_id: str, sample: dict[str, Any]) -> None:
        """Keep a stats sample in the seat's rolling window."""
        await self._seats.update_one({"_id": seat_id(meeting_id, user_id)},
                                     {"$push": {"samples": {"$each": [sample], "$slice": -SAMPLES}}})

    async def close_meeting(self, meeting_id: str) -> None:
        """The meeting is over: nobody is in, waiting or awaited any more."""
        for seat in await self.of_meeting(meeting_id):
            if seat.state == "admitted":
                await self._mirror.revoke(meeting_id, seat.version + 1, seat.user_id)
        await self._seats.update_many({"meetingId": meeting_id}, {"$set": {"state": "left"}, "$inc": {"version": 1},
                                                                  "$unset": {"awaySince": ""}})
