"""What /meetings answers and pushes besides stored records (CONTRACT §4)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.meetings.access import IceServer, JitsiRoom
from stores.meetings.meetings import MeetingRecord


@dataclass(frozen=True)
class ShownMeeting(MeetingRecord):
    """A meeting as its members see it: the title opened (it is stored sealed)."""

    title_text: str | None = None


@dataclass(frozen=True)
class Participant:
    """A member's seat as the room sees it."""

    user_id: str
    role: str
    state: str
    muted: tuple[str, ...] = ()
    sharing: bool = False


@dataclass(frozen=True)
class JoinAnswer:
    """`meeting:join`: the meeting, who is there, and (once admitted) how to connect."""

    meeting: ShownMeeting
    status: str
    participants: list[Participant]
    ice_servers: list[IceServer]
    jitsi: JitsiRoom | None


@dataclass(frozen=True)
class Admission:
    """`lobby:admitted` / `lobby:denied` to the guest (admitted: with how to connect)."""

    meeting_id: str
    ice_servers: list[IceServer]
    jitsi: JitsiRoom | None


@dataclass(frozen=True)
class SeatEvent:
    """`participant:joined` / `participant:left` / `lobby:waiting` / `meeting:kicked`: who, in which meeting."""

    meeting_id: str
    user_id: str
    name: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Muted:
    """`participant:muted`: the host muted `user_id`'s `kind`."""

    meeting_id: str
    user_id: str
    kind: str


@dataclass(frozen=True)
class Screen:
    """`participant:screen` (extension): `user_id` started or stopped sharing their screen."""

    meeting_id: str
    user_id: str
    sharing: bool


@dataclass(frozen=True)
class Signal:
    """`signal`: a WebRTC message relayed from `from_id` to one participant."""

    meeting_id: str
    from_id: str
    type: str
    payload: Any


@dataclass(frozen=True)
class RecordingState:
    """`recording:status`: recording or not, and every admitted participant's consent."""

    meeting_id: str
    state: str
    consents: dict[str, bool]
    recording_id: str | None
