"""Meetings as records: ad hoc creation, reading and listing, and following bookings through their lifecycle."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from errors import Forbidden, InvalidPayload, RequestIdReused
from handlers.auth import User
from handlers.events import BookingChanged, MeetingScheduled
from handlers.meetings.context import NAMESPACE, MeetingContext
from handlers.meetings.deltas import ShownMeeting
from handlers.page import Page, read_time_cursor, time_cursor
from stores.booking.bookings import BookingRecord
from stores.meetings.log import AuditEntry, Recording
from stores.meetings.meetings import MeetingRecord, NewMeeting, ms
from stores.mongo import new_id

ENDED_BOOKING = ("cancelled", "declined")


def room_name() -> str:
    """An unguessable Jitsi room name."""
    return "careline-" + secrets.token_urlsafe(18).replace("_", "a").replace("-", "b").lower()


class MeetingHandler:
    """meeting:create/get/list, meeting:audit, recording:list, and the meetings that follow bookings."""

    def __init__(self, ctx: MeetingContext) -> None:
        self.ctx = ctx
        self.store = ctx.stores.meetings

    def first_due(self, booking_id: str | None, start: datetime, end: datetime) -> datetime:
        """When the scheduler first looks at a meeting: the no-show decision, or the end of the join window."""
        if booking_id is not None:
            return ms(start + timedelta(minutes=self.ctx.config.meeting_no_show_minutes))
        return ms(end + timedelta(minutes=self.ctx.config.meeting_grace_minutes))

    async def create(self, user: User, participant_ids: list[str], start: datetime, end: datetime,
                     title: str | None, request_id: str) -> ShownMeeting:
        """meeting:create (therapist): an ad hoc meeting hosted by the caller, idempotent by requestId."""
        invited = tuple(dict.fromkeys(uid for uid in participant_ids if uid != user.id))
        if not invited:
            raise InvalidPayload("Invite someone", {"participantIds": ["Invite at least one other user."]})
        key = f"request:{user.id}:{request_id}"
        meeting_id = new_id()
        new = NewMeeting(id=meeting_id, key=key, booking_id=None, host_id=user.id, participant_ids=invited,
                         start=ms(start), end=ms(end), room=room_name(), created_at=self.ctx.clock(),
                         title=self.ctx.cipher.seal_text(title, meeting_id) if title else None,
                         due_at=self.first_due(None, start, end))
        record, created = await self.store.insert(new)
        if not created and (record.participant_ids, record.start, record.end) != (invited, new.start, new.end):
            raise RequestIdReused("This requestId was used for another meeting")
        shown = self.ctx.shown(record)
        if created:
            await self._announce(shown)
        return shown

    async def get(self, user: User, meeting_id: str) -> ShownMeeting:
        """meeting:get: a meeting the caller is in (any, for admins)."""
        return self.ctx.shown(await self.ctx.visible(user, meeting_id))

    async def page(self, user: User, status: str | None, from_: datetime | None, to: datetime | None, limit: int,
                   cursor: str | None) -> Page[ShownMeeting]:
        """meeting:list: the caller's meetings (all for admins) by start time."""
        after = read_time_cursor(cursor)
        records = await self.store.page(None if user.is_admin else user.id, status, from_, to, after, limit + 1)
        more = len(records) > limit
        records = records[:limit]
        next_cursor = time_cursor(records[-1].start, records[-1].id) if more else None
        return Page([self.ctx.shown(r) for r in records], next_cursor)

    async def audit(self, user: User, meeting_id: str) -> Page[AuditEntry]:
        """meeting:audit: the meeting's audit log, for its host and admins."""
        record = await self.ctx.visible(user, meeting_id)
        if user.id != record.host_id and not user.is_admin:
            raise Forbidden("Only the host and admins may read the audit log")
        return Page(await self.ctx.stores.audit.of_meeting(meeting_id), None)

    async def recordings(self, user: User, meeting_id: str) -> Page[Recording]:
        """recording:list: the meeting's recordings, for its members and admins."""
        await self.ctx.visible(user, meeting_id)
        return Page(await self.ctx.stores.recordings.of_meeting(meeting_id), None)

    async def _announce(self, shown: ShownMeeting) -> None:
        """`meeting:updated` (extension) to every member's sockets on /meetings."""
        for member in shown.members:
            await self.ctx.publisher.to_user(NAMESPACE, member, "meeting:updated", shown)

    # -- following bookings ------------------------------------------------------------------------

    async def booking_changed(self, event: BookingChanged) -> None:
        """Confirmed creates the meeting, rescheduled moves it, cancelled/declined cancel it."""
        if event.change in ("confirmed", "rescheduled", "cancelled", "declined"):
            await self.follow(event.booking.id)

    async def follow(self, booking_id: str) -> MeetingRecord | None:
        """Make the booking's meeting match the stored booking (changes may arrive in any order)."""
        booking = await self.ctx.stores.bookings.get(booking_id)
        if booking is None:
            return None
        meeting = await self.store.by_key(f"booking:{booking_id}")
        if meeting is None and booking.status == "confirmed":
            meeting = await self._create_for(booking)
            booking = await self.ctx.stores.bookings.get(booking_id) or booking
        if meeting is None:
            return None
        if booking.status in ENDED_BOOKING:
            cancelled = await self.store.cancel(meeting.id, self.ctx.clock())
            if cancelled is not None:
                await self.ctx.stores.seats.close_meeting(meeting.id)
                await self._announce(self.ctx.shown(cancelled))
                await self.ctx.stores.seats.settled(meeting.id)
            return cancelled or meeting
        if (meeting.start, meeting.end) != (ms(booking.start), ms(booking.end)):
            moved = await self.store.move(meeting.id, booking.start, booking.end,
                                          self.first_due(booking.id, booking.start, booking.end), self.ctx.clock())
            if moved is not None:
                await self._announce(self.ctx.shown(moved))
                return moved
        return meeting

    async def _create_for(self, booking: BookingRecord) -> MeetingRecord:
        new = NewMeeting(id=new_id(), key=f"booking:{booking.id}", booking_id=booking.id,
                         host_id=booking.therapist_id, participant_ids=(booking.client_id,), start=booking.start,
                         end=booking.end, title=None, room=room_name(), created_at=self.ctx.clock(),
                         due_at=self.first_due(booking.id, booking.start, booking.end))
        record, created = await self.store.insert(new)
        await self.ctx.bus.deliver(MeetingScheduled(booking.id, record.id))
        if created:
            await self._announce(self.ctx.shown(record))
        return record

