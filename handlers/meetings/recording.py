"""Consent-gated recording: careline keeps the state and the evidence of consent; the video service records."""
from __future__ import annotations

from errors import Conflict, NotFound, PreconditionFailed
from handlers.auth import User
from handlers.events import MeetingNotice
from handlers.meetings.context import MeetingContext
from handlers.meetings.deltas import RecordingState
from stores.meetings.log import Recording
from stores.meetings.meetings import OPEN, MeetingRecord
from stores.meetings.seats import Seat
from stores.mongo import new_id


class RecordingHandler:
    """recording:consent/start/stop, and stopping at once when consent is missing or withdrawn."""

    def __init__(self, ctx: MeetingContext) -> None:
        self.ctx = ctx

    async def consent(self, user: User, meeting_id: str, consent: bool) -> None:
        """recording:consent: the caller's consent; withdrawing it stops a running recording."""
        meeting = await self.ctx.member(user, meeting_id)
        seats = self.ctx.stores.seats
        if await seats.get(meeting_id, user.id) is None:
            raise PreconditionFailed("Join the meeting first")
        await seats.set_consent(meeting_id, user.id, consent)
        await self.ctx.log(meeting_id, user.id, "consent_given" if consent else "consent_withdrawn")
        if not await self.stop_without_consent(meeting):
            await self.announce(meeting, await seats.of_meeting(meeting_id))

    async def start(self, user: User, meeting_id: str) -> Recording:
        """recording:start (host): only with the consent of every admitted participant."""
        meeting = await self.ctx.hosted(user, meeting_id)
        if meeting.status not in OPEN:
            raise PreconditionFailed("The meeting is over")
        seats = await self.ctx.stores.seats.of_meeting(meeting_id)
        admitted = [s for s in seats if s.state == "admitted"]
        missing = [s.user_id for s in admitted if not s.consent]
        if missing:
            raise PreconditionFailed("Every participant must consent to recording", {"missing": missing})
        recording_id = new_id()
        if not await self.ctx.stores.meetings.swap_recording(meeting_id, None, recording_id):
            raise Conflict("The meeting is already being recorded")
        recording = await self.ctx.stores.recordings.insert(recording_id, meeting_id, user.id,
                                                            [s.user_id for s in admitted], self.ctx.clock())
        await self.ctx.log(meeting_id, user.id, "recording_start", recording_id)
        meeting = await self.ctx.stores.meetings.get(meeting_id) or meeting
        if await self.stop_without_consent(meeting):  # a consent withdrawn meanwhile wins
            return await self._reloaded(recording)
        await self.announce(meeting, seats)
        await self.ctx.notice(MeetingNotice("recording_started", meeting_id,
                                                 tuple(s.user_id for s in admitted)))
        return recording

    async def stop(self, user: User, meeting_id: str) -> Recording:
        """recording:stop (host)."""
        meeting = await self.ctx.hosted(user, meeting_id)
        if meeting.recording_id is None:
            raise PreconditionFailed("The meeting is not being recorded")
        stopped = await self._stop(meeting, user.id, "stopped")
        if stopped is None:
            raise PreconditionFailed("The meeting is not being recorded")
        return stopped

    async def stop_without_consent(self, meeting: MeetingRecord) -> bool:
        """Stop the running recording when an admitted participant has not consented; True when stopped."""
        if meeting.recording_id is None:
            return False
        seats = await self.ctx.stores.seats.of_meeting(meeting.id)
        if all(s.consent for s in seats if s.state == "admitted"):
            return False
        return await self._stop(meeting, None, "consent_missing") is not None

    async def _stop(self, meeting: MeetingRecord, actor_id: str | None, reason: str) -> Recording | None:
        assert meeting.recording_id is not None
        if not await self.ctx.stores.meetings.swap_recording(meeting.id, meeting.recording_id, None):
            return None
        stopped = await self.ctx.stores.recordings.stop(meeting.recording_id, self.ctx.clock(), reason)
        await self.ctx.log(meeting.id, actor_id, "recording_stop", meeting.recording_id)
        latest = await self.ctx.stores.meetings.get(meeting.id) or meeting
        await self.announce(latest, await self.ctx.stores.seats.of_meeting(meeting.id))
        return stopped

    async def _reloaded(self, recording: Recording) -> Recording:
        for each in await self.ctx.stores.recordings.of_meeting(recording.meeting_id):
            if each.id == recording.id:
                return each
        raise NotFound("No such recording")

    async def announce(self, meeting: MeetingRecord, seats: list[Seat]) -> None:
        """recording:status to the room: the state and every seated participant's consent."""
        state = RecordingState(meeting.id, "recording" if meeting.recording_id else "stopped",
                               {s.user_id: s.consent for s in seats if s.state in ("admitted", "waiting")},
                               meeting.recording_id)
        await self.ctx.to_admitted(meeting.id, "recording:status", state, seats)
