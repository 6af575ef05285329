"""The live room: join rules and the lobby, signaling between admitted participants, host controls."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from clock import iso
from errors import Conflict, Forbidden, InvalidPayload, NotFound, PaymentRequired, PreconditionFailed
from handlers.auth import User
from handlers.events import MeetingNotice
from handlers.meetings.context import NAMESPACE, MeetingContext, seat_room
from handlers.meetings.deltas import Admission, JoinAnswer, Muted, Participant, Screen, SeatEvent, Signal
from handlers.meetings.foreground import foreground
from handlers.meetings.outcomes import MeetingCloser
from handlers.meetings.recording import RecordingHandler
from handlers.publisher import room_group
from stores.meetings.meetings import OPEN, MeetingRecord
from stores.meetings.membership import Membership
from stores.meetings.seats import Seat
from stores.sockets import SocketRegistry

SEATED = ("admitted", "waiting")
log = logging.getLogger("careline.meetings")


class RoomHandler:
    """meeting:join/leave/end, lobby:admit/deny, signal, participant:mute/kick/screen, dropped sockets."""

    def __init__(self, ctx: MeetingContext, closer: MeetingCloser, recording: RecordingHandler,
                 sockets: SocketRegistry) -> None:
        self.ctx = ctx
        self.seats = ctx.stores.seats
        self.closer = closer
        self.recording = recording
        self.sockets = sockets
        self.foreground = ctx.foreground  # joins, admissions and denials: the notices they cause wait for them

    # -- joining -------------------------------------------------------------------------------------

    @foreground
    async def join(self, user: User, sid: str, meeting_id: str) -> JoinAnswer:
        """meeting:join: every rule checked, then straight in (host, returning, auto-admitted) or the lobby."""
        meeting, state, now = await self._enter(user, sid, meeting_id)
        await self.ctx.publisher.join(NAMESPACE, sid, seat_room(meeting_id, user.id), user.id)
        if state == "waiting":
            await asyncio.gather(self.ctx.log(meeting_id, user.id, "lobby_wait"), self.ctx.to_seats(
                meeting_id, [meeting.host_id], "lobby:waiting",
                SeatEvent(meeting_id, user.id, user.name, _role(meeting, user.id))))
            await self.seats.settled(meeting_id)  # a returning seat's old admission may have been revoked
            return JoinAnswer(self.ctx.shown(meeting), "waiting", [], [], None)
        _logged, (meeting, seats) = await asyncio.gather(self.ctx.log(meeting_id, user.id, "join", user.id),
                                                         self._arrived(meeting, user.id))
        if user.id == meeting.host_id:
            absent = tuple(uid for uid in meeting.participant_ids if uid not in _admitted(seats))
            await self.ctx.notice(MeetingNotice("starting", meeting_id, absent))
        return JoinAnswer(self.ctx.shown(meeting), "admitted", _participants(meeting, seats),
                          self.ctx.access.ice_servers(meeting, user.id, now), self.ctx.access.jitsi(meeting, user, now))

    async def _enter(self, user: User, sid: str, meeting_id: str) -> tuple[MeetingRecord, str, datetime]:
        """Every rule checked and the caller's seat taken: (the meeting as read, admitted | waiting, now)."""
        members = await self.ctx.stores.meetings.known(meeting_id)
        if members is not None and user.id != members.host_id and user.id in members.participant_ids \
                and not self._straight_in(members, user.id, None, None):
            meeting, state, now = await self._knock(user, sid, members)
            if state is not None:
                return meeting, state, now
            seat = await self.seats.get(meeting_id, user.id)
        else:
            meeting, seat = await asyncio.gather(self.ctx.member(user, meeting_id),
                                                 self.seats.get(meeting_id, user.id))
            now = self.ctx.clock()
            await self._may_join(meeting, user, now)
        return meeting, await self._take_seat(meeting, user, sid, now, seat), now

    async def _knock(self, user: User, sid: str, members: Membership) -> tuple[MeetingRecord, str | None, datetime]:
        """An invited guest's join, membership known: the lobby seat is created (when there is none yet) while the
        meeting is read, not after; the rules are checked on what was read, and a refused join's new seat is deleted
        before anyone hears of it. State None: the guest had a seat already (nothing written)."""
        seating = asyncio.ensure_future(
            self.seats.move(members.id, user.id, None, "waiting", sid, {"hostId": members.host_id}))
        try:
            meeting = await self.ctx.member(user, members.id)
            now = self.ctx.clock()
            await self._may_join(meeting, user, now)
        except Exception:
            await self._unknock(seating, members.id, user.id)
            raise
        return meeting, "waiting" if await seating else None, now

    async def _unknock(self, seating: asyncio.Future[bool], meeting_id: str, user_id: str) -> None:
        try:
            if await seating:
                await self.seats.forget_new(meeting_id, user_id)
        except Exception as error:  # the refusal still stands; the seat stays waiting, unannounced
            log.warning("a refused join's lobby seat was not given up: %s", type(error).__name__)

    async def _may_join(self, meeting: MeetingRecord, user: User, now: datetime) -> None:
        """The window and, for guests, payment (membership was checked by reading the meeting)."""
        self._in_window(meeting, now)
        if user.id != meeting.host_id:
            await self._paid(meeting)

    def _in_window(self, meeting: MeetingRecord, now: datetime) -> None:
        if meeting.status not in OPEN:
            raise PreconditionFailed(f"The meeting is {meeting.status}")
        opens = meeting.start - timedelta(minutes=self.ctx.config.meeting_join_early_minutes)
        closes = self.ctx.access.closes_at(meeting)
        if now < opens:
            raise PreconditionFailed(f"The meeting opens at {iso(opens)}", {"opensAt": iso(opens)})
        if now > closes:
            raise PreconditionFailed("The meeting has closed", {"closedAt": iso(closes)})

    async def _paid(self, meeting: MeetingRecord) -> None:
        if meeting.booking_id is None:
            return
        booking = await self.ctx.stores.bookings.get(meeting.booking_id)
        if booking is not None and booking.policy.get("require_payment") and booking.payment_status != "paid":
            raise PaymentRequired("The session must be paid before joining")

    async def _take_seat(self, meeting: MeetingRecord, user: User, sid: str, now: datetime, seat: Seat | None) -> str:
        """Move the caller's seat (`seat`: as read with the meeting) to admitted or waiting (compare-and-set on
        what was read; read again when it changed meanwhile)."""
        for _ in range(5):
            target = "admitted" if self._straight_in(meeting, user.id, seat, now) else "waiting"
            if await self.seats.move(meeting.id, user.id, seat, target, sid, {"hostId": meeting.host_id}):
                return target
            seat = await self.seats.get(meeting.id, user.id)
        raise Conflict("The seat keeps changing; try again")

    def _straight_in(self, meeting: MeetingRecord | Membership, user_id: str, seat: Seat | None,
                     now: datetime | None) -> bool:
        if user_id == meeting.host_id:
            return True
        if self.ctx.config.meeting_auto_admit_booked and meeting.booking_id and user_id in meeting.participant_ids:
            return True
        if seat is None or seat.state != "admitted" or now is None:
            return False
        keep = timedelta(seconds=self.ctx.config.meeting_reconnect_seconds)
        return seat.away_since is None or now - seat.away_since <= keep

    async def _arrived(self, meeting: MeetingRecord, user_id: str) -> tuple[MeetingRecord, list[Seat]]:
        """An admitted user is in: participant:joined, attendance and `live` (in one write), recording consent."""
        seats = await self.seats.of_meeting(meeting.id)
        admitted = _admitted(seats)
        await asyncio.gather(*(self.seats.remember(seat) for seat in seats if seat.user_id == user_id))
        live = meeting.status == "scheduled" and meeting.host_id in admitted and len(admitted) > 1
        meeting, _seats = await asyncio.gather(
            self.ctx.stores.meetings.arrive(meeting, user_id, self.ctx.clock() if live else None),
            self.ctx.to_admitted(meeting.id, "participant:joined",
                                 SeatEvent(meeting.id, user_id, None, _role(meeting, user_id)), seats))
        await self.recording.stop_without_consent(meeting)
        return meeting, seats

    # -- the lobby -----------------------------------------------------------------------------------

    @foreground
    async def admit(self, user: User, meeting_id: str, user_id: str) -> None:
        """lobby:admit (host): the waiting guest is in and told how to connect."""
        meeting, admitted = await asyncio.gather(self.ctx.hosted(user, meeting_id),
                                                 self.seats.admit_waiting(meeting_id, user_id, user.id))
        if not admitted:  # not waiting (or a seat from before seats named their host): the database's word
            await self._from_lobby(meeting_id, user_id, "admitted", await self.seats.get(meeting_id, user_id))
        await asyncio.gather(self.ctx.log(meeting_id, user.id, "admit", user_id), self._admitted(meeting, user_id))
        await self._arrived(meeting, user_id)
        await self.ctx.notice(MeetingNotice("admitted", meeting_id, (user_id,)))

    async def _admitted(self, meeting: MeetingRecord, user_id: str) -> None:
        """lobby:admitted to the guest: how to connect (ICE servers, and the Jitsi block when configured)."""
        now = self.ctx.clock()
        jitsi = self.ctx.access.jitsi(meeting, await self._user(user_id, meeting), now) \
            if self.ctx.access.jitsi_enabled else None
        admission = Admission(meeting.id, self.ctx.access.ice_servers(meeting, user_id, now), jitsi)
        await self.ctx.to_seats(meeting.id, [user_id], "lobby:admitted", admission)

    @foreground
    async def deny(self, user: User, meeting_id: str, user_id: str) -> None:
        """lobby:deny (host): the waiting guest is turned away."""
        _meeting, seat = await asyncio.gather(self.ctx.hosted(user, meeting_id), self.seats.get(meeting_id, user_id))
        await self._from_lobby(meeting_id, user_id, "denied", seat)
        await self.ctx.log(meeting_id, user.id, "deny", user_id)
        await self.ctx.to_seats(meeting_id, [user_id], "lobby:denied", Admission(meeting_id, [], None))
        await self.ctx.notice(MeetingNotice("denied", meeting_id, (user_id,)))

    async def _from_lobby(self, meeting_id: str, user_id: str, state: str, seat: Seat | None) -> None:
        """The waiting seat (as read with the meeting) moves to `state`."""
        if seat is None or seat.state != "waiting" or not await self.seats.move(meeting_id, user_id, seat, state):
            raise NotFound("Nobody by that id is waiting")

    async def _user(self, user_id: str, meeting: MeetingRecord) -> User:
        known = await self.ctx.users.get(user_id)
        role = known.role if known else ("therapist" if user_id == meeting.host_id else "client")
        return User(user_id, role, known.name if known else None)

    # -- leaving -------------------------------------------------------------------------------------

    async def leave(self, user: User, sid: str, meeting_id: str) -> None:
        """meeting:leave: the caller's seat is given up."""
        await self.ctx.member(user, meeting_id)
        seat = await self.seats.get(meeting_id, user.id)
        if seat is None or seat.state not in SEATED or not await self.seats.move(meeting_id, user.id, seat, "left"):
            raise PreconditionFailed("You are not in this meeting")
        await self._unseat(meeting_id, user.id, seat.sids)
        await self.ctx.log(meeting_id, user.id, "leave")
        if seat.state == "admitted":
            await self.ctx.to_admitted(meeting_id, "participant:left", SeatEvent(meeting_id, user.id))
        await self.seats.settled(meeting_id)

    async def kick(self, user: User, meeting_id: str, user_id: str) -> None:
        """participant:kick (host): out of the room, no new credentials, back through the lobby to return."""
        await self.ctx.hosted(user, meeting_id)
        if user_id == user.id:
            raise InvalidPayload("The host cannot kick themselves", {"userId": ["Not yourself."]})
        seat = await self.seats.get(meeting_id, user_id)
        if seat is None or seat.state not in SEATED or not await self.seats.move(meeting_id, user_id, seat, "kicked"):
            raise NotFound("No such participant in the meeting")
        await self.ctx.log(meeting_id, user.id, "kick", user_id)
        await self.ctx.publisher.to_user(NAMESPACE, user_id, "meeting:kicked", SeatEvent(meeting_id, user_id))
        await self._unseat(meeting_id, user_id, seat.sids)
        await self.ctx.to_admitted(meeting_id, "participant:left", SeatEvent(meeting_id, user_id))
        await self.seats.settled(meeting_id)

    async def _unseat(self, meeting_id: str, user_id: str, sids: tuple[str, ...]) -> None:
        """Take the seat's sockets out of its room (on whichever process they are)."""
        for sid in sids:
            await self.ctx.publisher.leave(NAMESPACE, sid, seat_room(meeting_id, user_id), user_id)

    async def end(self, user: User, meeting_id: str) -> MeetingRecord:
        """meeting:end (host): everyone leaves, the duration is kept, a booking takes its outcome."""
        meeting = await self.ctx.hosted(user, meeting_id)
        ended = await self.closer.end(meeting, user.id)
        if ended is None:
            raise PreconditionFailed(f"The meeting is {(await self.ctx.visible(user, meeting_id)).status}")
        for seat in await self.seats.of_meeting(meeting_id):
            await self._unseat(meeting_id, seat.user_id, seat.sids)
        await self.seats.settled(meeting_id)
        return self.ctx.shown(ended)

    async def socket_dropped(self, user: User, sid: str, meeting_id: str) -> None:
        """A socket of a seat disconnected; with none of the user's left in it, the seat is away."""
        live = await self.sockets.users(room_group(NAMESPACE, seat_room(meeting_id, user.id)))
        await self.seats.drop_socket(meeting_id, user.id, sid, None if user.id in live else self.ctx.clock())

    # -- in the room ---------------------------------------------------------------------------------

    async def signal(self, user: User, meeting_id: str, to: str, type_: str, payload: Any) -> None:
        """signal: relayed only to `to`, only between admitted participants of the meeting."""
        if to == user.id:
            raise InvalidPayload("A signal goes to someone else", {"to": ["Not yourself."]})
        if not await self.seats.both_admitted(meeting_id, user.id, to):
            await self._check_pair(user, meeting_id, to)
        await self.ctx.publisher.to_room(NAMESPACE, seat_room(meeting_id, to), "signal",
                                         Signal(meeting_id, user.id, type_, payload))

    async def _check_pair(self, user: User, meeting_id: str, to: str) -> None:
        """The database's word on a signal the mirror could not vouch for (and the mirror warmed with it)."""
        sender, recipient = await self.seats.pair(meeting_id, user.id, to)
        if sender is None:
            await self.ctx.member(user, meeting_id)
            raise PreconditionFailed("Join the meeting first")
        if sender.state != "admitted":
            raise Forbidden("You are not admitted to this meeting")
        if recipient is None or recipient.state != "admitted":
            raise NotFound("No admitted participant with that id")
        await self.seats.remember(sender)
        await self.seats.remember(recipient)

    async def admitted_seat(self, user: User, meeting_id: str) -> Seat:
        """The caller's seat, which must be admitted."""
        seat = await self.seats.get(meeting_id, user.id)
        if seat is None:
            await self.ctx.member(user, meeting_id)
            raise PreconditionFailed("Join the meeting first")
        if seat.state != "admitted":
            raise Forbidden("You are not admitted to this meeting")
        return seat

    async def mute(self, user: User, meeting_id: str, user_id: str, kind: str) -> None:
        """participant:mute (host): the room hears of it; the muted user's clients mute `kind`."""
        await self.ctx.hosted(user, meeting_id)
        seat = await self.seats.get(meeting_id, user_id)
        if seat is None or seat.state != "admitted":
            raise NotFound("No such participant in the meeting")
        await self.seats.set_muted(meeting_id, user_id, kind)
        await self.ctx.log(meeting_id, user.id, f"mute_{kind}", user_id)
        await self.ctx.to_admitted(meeting_id, "participant:muted", Muted(meeting_id, user_id, kind))

    async def screen(self, user: User, meeting_id: str, sharing: bool) -> None:
        """participant:screen (extension): the caller started or stopped sharing their screen."""
        await self.admitted_seat(user, meeting_id)
        await self.seats.set_sharing(meeting_id, user.id, sharing)
        await self.ctx.to_admitted(meeting_id, "participant:screen", Screen(meeting_id, user.id, sharing))

    async def stats(self, user: User, meeting_id: str, stats: dict[str, Any]) -> None:
        """meeting:stats: one sample kept in the caller's rolling window."""
        await self.admitted_seat(user, meeting_id)
        sample = {"rttMs": stats.get("rtt_ms"), "packetLoss": stats.get("packet_loss"),
                  "bitrateKbps": stats.get("bitrate_kbps"), "at": self.ctx.clock()}
        await self.seats.add_sample(meeting_id, user.id, sample)


def _admitted(seats: list[Seat]) -> set[str]:
    return {s.user_id for s in seats if s.state == "admitted"}


def _role(meeting: MeetingRecord, user_id: str) -> str:
    return "host" if user_id == meeting.host_id else "guest"


def _participants(meeting: MeetingRecord, seats: list[Seat]) -> list[Participant]:
    return [Participant(s.user_id, _role(meeting, s.user_id), s.state, s.muted, s.sharing)
            for s in seats if s.state in SEATED]
