"""The /meetings namespace (CONTRACT §4): rooms, the lobby, signaling, host controls, recording consent."""
from __future__ import annotations

from typing import Any

from errors import RateLimited
from handlers.auth import User
from handlers.meetings.context import parse_seat_room
from handlers.meetings.feature import MeetingsFeature
from realtime.base import BaseNamespace, request
from realtime.schemas.common import Nothing
from realtime.schemas.meetings import (
    AdmissionOut,
    AuditPageOut,
    Consent,
    CreateMeeting,
    DeniedOut,
    GuestRef,
    JoinOut,
    ListMeetings,
    MeetingOut,
    MeetingPageOut,
    MeetingRef,
    Mute,
    MutedOut,
    RecordingOut,
    RecordingPageOut,
    RecordingStatusOut,
    ScreenOut,
    ScreenShare,
    SeatEventOut,
    SendSignal,
    SignalOut,
    Stats,
)

Payload = dict[str, Any]
ENVELOPE_BYTES = 4096  # a signal may carry a whole 64 KiB SDP plus its envelope
NEGOTIATION_RATE = (20, 2.0)  # offers, answers and restarts per user; candidates only meet the event's own limit


class MeetingsNamespace(BaseNamespace[MeetingsFeature]):
    """Thin transport over the meetings feature's handlers.

    Signals of one socket are relayed in the order they were sent (each socket's signals pass one at a time).
    """

    path = "/meetings"
    emits = {"participant:joined": SeatEventOut, "participant:left": SeatEventOut, "lobby:waiting": SeatEventOut,
             "lobby:admitted": AdmissionOut, "lobby:denied": DeniedOut, "signal": SignalOut,
             "participant:muted": MutedOut, "participant:screen": ScreenOut, "meeting:kicked": SeatEventOut,
             "recording:status": RecordingStatusOut, "meeting:ended": MeetingOut, "meeting:updated": MeetingOut}
    ordered_events = frozenset({"signal"})  # handled in the connection's reader, one at a time (realtime/base.py)

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """A socket of a seat dropped: its seat waits MEETING_RECONNECT_SECONDS for a reconnect."""
        for room in self.rooms(sid):
            seat = parse_seat_room(room)
            if seat is not None:
                await self.handler.room.socket_dropped(user, sid, seat[0])

    @request("meeting:create", CreateMeeting, ack=MeetingOut, rate=(10, 1.0), roles=("therapist",),
             idempotency="handler")
    async def create(self, sid: str, user: User, payload: Payload) -> Any:
        """Create an ad hoc meeting hosted by the caller."""
        return await self.handler.meetings.create(user, **payload)

    @request("meeting:get", MeetingRef, ack=MeetingOut)
    async def get_meeting(self, sid: str, user: User, payload: Payload) -> Any:
        """One of the caller's meetings."""
        return await self.handler.meetings.get(user, **payload)

    @request("meeting:list", ListMeetings, ack=MeetingPageOut)
    async def list_meetings(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's meetings (extension)."""
        return await self.handler.meetings.page(user, **payload)

    @request("meeting:join", MeetingRef, ack=JoinOut, rate=(20, 1.0))
    async def join(self, sid: str, user: User, payload: Payload) -> Any:
        """Join a meeting (clients wait in the lobby until the host admits them)."""
        return await self.handler.room.join(user, sid, **payload)

    @request("lobby:admit", GuestRef)
    async def admit(self, sid: str, user: User, payload: Payload) -> Any:
        """Admit a waiting guest (host)."""
        await self.handler.room.admit(user, **payload)

    @request("lobby:deny", GuestRef)
    async def deny(self, sid: str, user: User, payload: Payload) -> Any:
        """Turn a waiting guest away (host)."""
        await self.handler.room.deny(user, **payload)

    @request("meeting:leave", MeetingRef)
    async def leave(self, sid: str, user: User, payload: Payload) -> Any:
        """Leave a meeting."""
        await self.handler.room.leave(user, sid, **payload)

    @request("meeting:end", MeetingRef, ack=MeetingOut)
    async def end(self, sid: str, user: User, payload: Payload) -> Any:
        """End the meeting for everyone (host)."""
        return await self.handler.room.end(user, **payload)

    @request("signal", SendSignal, ack=Nothing, rate=(150, 75.0), extra_bytes=ENVELOPE_BYTES)
    async def signal(self, sid: str, user: User, payload: Payload) -> Any:
        """Relay a WebRTC message to one admitted participant."""
        if payload["type_"] != "candidate":
            wait_ms = await self.shared.rate_limiter.take(f"{self.namespace}:negotiate:{user.id}", *NEGOTIATION_RATE)
            if wait_ms:
                raise RateLimited(wait_ms)
        await self.handler.room.signal(user, payload["meeting_id"], payload["to"], payload["type_"], payload["payload"])

    @request("participant:mute", Mute)
    async def mute(self, sid: str, user: User, payload: Payload) -> Any:
        """Mute a participant's audio or video (host)."""
        await self.handler.room.mute(user, **payload)

    @request("participant:kick", GuestRef)
    async def kick(self, sid: str, user: User, payload: Payload) -> Any:
        """Remove a participant (host); they need admission to return."""
        await self.handler.room.kick(user, **payload)

    @request("participant:screen", ScreenShare)
    async def screen(self, sid: str, user: User, payload: Payload) -> Any:
        """Tell the room the caller started or stopped sharing their screen (extension)."""
        await self.handler.room.screen(user, **payload)

    @request("recording:consent", Consent)
    async def consent(self, sid: str, user: User, payload: Payload) -> Any:
        """Give or withdraw consent to recording."""
        await self.handler.recording.consent(user, **payload)

    @request("recording:start", MeetingRef, ack=RecordingOut)
    async def start_recording(self, sid: str, user: User, payload: Payload) -> Any:
        """Start recording (host; every admitted participant must have consented)."""
        return await self.handler.recording.start(user, **payload)

    @request("recording:stop", MeetingRef, ack=RecordingOut)
    async def stop_recording(self, sid: str, user: User, payload: Payload) -> Any:
        """Stop recording (host)."""
        return await self.handler.recording.stop(user, **payload)

    @request("recording:list", MeetingRef, ack=RecordingPageOut)
    async def list_recordings(self, sid: str, user: User, payload: Payload) -> Any:
        """A meeting's recordings (extension)."""
        return await self.handler.meetings.recordings(user, **payload)

    @request("meeting:stats", Stats, rate=(10, 1.0))
    async def stats(self, sid: str, user: User, payload: Payload) -> Any:
        """Report call quality (kept as a rolling window, summarised when the meeting ends)."""
        await self.handler.room.stats(user, **payload)

    @request("meeting:audit", MeetingRef, ack=AuditPageOut)
    async def audit(self, sid: str, user: User, payload: Payload) -> Any:
        """The meeting's audit log (host and admins; extension)."""
        return await self.handler.meetings.audit(user, **payload)
