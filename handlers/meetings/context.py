"""What every meetings handler works with: the stores, delivery to seats, the audit log, "now"."""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from clock import Clock
from config import Config
from errors import Forbidden, NotFound, Unavailable
from handlers.auth import User
from handlers.events import EventBus, MeetingNotice
from handlers.meetings.access import MeetingAccess
from handlers.meetings.deltas import ShownMeeting
from handlers.meetings.foreground import Foreground
from handlers.publisher import Publisher
from stores.booking.bookings import BookingStore
from stores.crypto import Cipher
from stores.group_commit import Backlogged
from stores.meetings.log import AuditStore, RecordingStore
from stores.meetings.meetings import MeetingRecord, MeetingStore
from stores.meetings.seats import Seat, SeatStore
from stores.users import UserStore

NAMESPACE = "/meetings"
NOTICE_MAX_WAIT_SECONDS = 2.0  # how long a meeting notice waits for the joins in flight at most


def seat_room(meeting_id: str, user_id: str) -> str:
    """The room of the sockets a user joined a meeting with: everything for that seat goes there."""
    return f"meeting:{meeting_id}:{user_id}"


def parse_seat_room(room: str) -> tuple[str, str] | None:
    """(meeting id, user id) of a seat room, else None."""
    kind, _, rest = room.partition(":")
    meeting_id, _, user_id = rest.partition(":")
    return (meeting_id, user_id) if kind == "meeting" and meeting_id and user_id else None


@dataclass(frozen=True)
class Stores:
    """The meetings feature's stores (and the bookings it reads)."""

    meetings: MeetingStore
    seats: SeatStore
    audit: AuditStore
    recordings: RecordingStore
    bookings: BookingStore


@dataclass(frozen=True)
class MeetingContext:
    """Shared by the meetings handlers: stores, collaborators, settings."""

    stores: Stores
    publisher: Publisher
    bus: EventBus
    clock: Clock
    config: Config
    cipher: Cipher
    users: UserStore

    @functools.cached_property
    def access(self) -> MeetingAccess:
        """ICE servers and Jitsi tokens."""
        return MeetingAccess(self.config)

    @functools.cached_property
    def foreground(self) -> Foreground:
        """Joins and admissions in flight here; the notices wait their turn behind them."""
        return Foreground(NOTICE_MAX_WAIT_SECONDS)

    async def notice(self, notice: MeetingNotice) -> None:
        """Announce a meeting notice (notifications' domain event) once the lobby's requests here allow."""
        await self.bus.publish(notice, turn=self.foreground.turn)

    @property
    def lease(self) -> timedelta:
        """How long a scheduler loop holds a meeting."""
        return timedelta(seconds=self.config.meeting_lease_seconds)

    def shown(self, record: MeetingRecord) -> ShownMeeting:
        """The meeting as its members see it (title opened)."""
        title = self.cipher.open_text(record.title, record.id) if record.title else None
        return ShownMeeting(**vars(record), title_text=title)

    async def visible(self, user: User, meeting_id: str) -> MeetingRecord:
        """A meeting the caller is the host of or invited to (any, for admins); `not_found` otherwise."""
        record = await self.stores.meetings.get(meeting_id)
        if record is None or not (record.invited(user.id) or user.is_admin):
            raise NotFound("No such meeting")
        return record

    async def member(self, user: User, meeting_id: str) -> MeetingRecord:
        """A meeting the caller is the host of or invited to; `not_found` for strangers, `forbidden` for admins
        (they may read a meeting, not be in it)."""
        record = await self.visible(user, meeting_id)
        if not record.invited(user.id):
            raise Forbidden("Only the host and invited users may do this")
        return record

    async def hosted(self, user: User, meeting_id: str) -> MeetingRecord:
        """A meeting the caller hosts; `not_found` for strangers, `forbidden` for those who may see it (its
        invited participants, admins) but are not its host."""
        record = await self.visible(user, meeting_id)
        if record.host_id != user.id:
            raise Forbidden("Only the host may do this")
        return record

    async def log(self, meeting_id: str, actor_id: str | None, action: str, target_id: str | None = None) -> None:
        """Append to the audit log (durably, with the other entries of its batch); `unavailable` when the database
        is too far behind to take it."""
        try:
            await self.stores.audit.append(meeting_id, actor_id, action, target_id, self.clock())
        except Backlogged:
            raise Unavailable("The meeting service is busy, try again") from None

    async def to_seats(self, meeting_id: str, user_ids: list[str] | set[str], event: str, payload: Any) -> None:
        """Push an event to the sockets each listed user joined the meeting with."""
        await asyncio.gather(*(self.publisher.to_room(NAMESPACE, seat_room(meeting_id, uid), event, payload)
                               for uid in user_ids))

    async def to_admitted(self, meeting_id: str, event: str, payload: Any, seats: list[Seat] | None = None,
                          skip: str | None = None) -> list[Seat]:
        """Push an event to every admitted participant (one indexed read of the seats); returns the seats."""
        seats = await self.stores.seats.of_meeting(meeting_id) if seats is None else seats
        await self.to_seats(meeting_id, [s.user_id for s in seats if s.state == "admitted" and s.user_id != skip],
                            event, payload)
        return seats
