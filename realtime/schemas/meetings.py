"""Request payloads and wire shapes of /meetings (CONTRACT §4)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import post_dump, validates_schema

from realtime.schemas.common import (
    ID_LENGTH,
    Id,
    OutputSchema,
    Pagination,
    RequestId,
    RequestSchema,
    UtcDateTime,
    ValidationError,
    fields,
    page_of,
    validate,
)

STATUSES = ("scheduled", "live", "ended", "cancelled")
SIGNAL_TYPES = ("offer", "answer", "candidate", "restart")
MAX_SDP = 64 * 1024
LONGEST_MEETING = timedelta(hours=8)


class SignalPayload(fields.Field):
    """An SDP string (≤ 64 KiB) or an object (an ICE candidate, a session description)."""

    json_schema: dict[str, Any] = {"oneOf": [{"type": "string", "maxLength": MAX_SDP}, {"type": "object"}]}
    default_error_messages = {"invalid": "An SDP string (at most 64 KiB) or an object."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if (isinstance(value, str) and len(value) <= MAX_SDP) or isinstance(value, dict):
            return value
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


# -- requests -----------------------------------------------------------------------------------------

class CreateMeeting(RequestSchema):
    """`meeting:create {participantIds, start, end, title?, requestId}`."""

    participant_ids = fields.List(Id(), required=True, validate=validate.Length(1, 20))
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    title = fields.String(load_default=None, validate=validate.Length(max=200))
    request_id = RequestId(required=True)

    @validates_schema
    def _span(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["end"] <= data["start"]:
            raise ValidationError("Must be after start.", "end")
        if data["end"] - data["start"] > LONGEST_MEETING:
            raise ValidationError("A meeting lasts at most 8 hours.", "end")


class MeetingRef(RequestSchema):
    """`{meetingId}`."""

    meeting_id = Id(required=True)


class ListMeetings(Pagination):
    """`meeting:list {status?, from?, to?, limit?, cursor?}` (extension)."""

    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    from_ = UtcDateTime(load_default=None, data_key="from")
    to = UtcDateTime(load_default=None)


class GuestRef(MeetingRef):
    """`{meetingId, userId}`."""

    user_id = Id(required=True)


class SendSignal(MeetingRef):
    """`signal {meetingId, to, type, payload}`."""

    to = Id(required=True)
    type_ = fields.String(required=True, data_key="type", validate=validate.OneOf(SIGNAL_TYPES))
    payload = SignalPayload(required=True)

    def quick_load(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """A well-formed signal, checked by hand (a trickle sends thousands a second); anything else, valid or not,
        goes through `load`."""
        if len(raw) != 4:
            return None
        meeting_id, to, kind, payload = raw.get("meetingId"), raw.get("to"), raw.get("type"), raw.get("payload")
        if (type(meeting_id) is str and 0 < len(meeting_id) <= ID_LENGTH and type(to) is str
                and 0 < len(to) <= ID_LENGTH and kind in SIGNAL_TYPES
                and (type(payload) is dict or (type(payload) is str and len(payload) <= MAX_SDP))):
            return {"meeting_id": meeting_id, "to": to, "type_": kind, "payload": payload}
        return None


class Mute(GuestRef):
    """`participant:mute {meetingId, userId, kind}`."""

    kind = fields.String(required=True, validate=validate.OneOf(("audio", "video")))


class Consent(MeetingRef):
    """`recording:consent {meetingId, consent}`."""

    consent = fields.Boolean(required=True)


class ScreenShare(MeetingRef):
    """`participant:screen {meetingId, sharing}` (extension)."""

    sharing = fields.Boolean(required=True)


class StatsSample(RequestSchema):
    """`{rttMs?, packetLoss? (fraction 0..1), bitrateKbps?}`."""

    rtt_ms = fields.Float(load_default=None, validate=validate.Range(0, 600_000))
    packet_loss = fields.Float(load_default=None, validate=validate.Range(0, 1))
    bitrate_kbps = fields.Float(load_default=None, validate=validate.Range(0, 1_000_000))


class Stats(MeetingRef):
    """`meeting:stats {meetingId, stats}`."""

    stats = fields.Nested(StatsSample, required=True)


# -- what the server sends ------------------------------------------------------------------------------

class QualityOut(OutputSchema):
    """One participant's call quality over the meeting (from their `meeting:stats` samples)."""

    user_id = fields.String(attribute="userId", required=True)
    samples = fields.Integer(required=True)
    median_rtt_ms = fields.Float(attribute="medianRttMs", allow_none=True, required=True)
    worst_packet_loss = fields.Float(attribute="worstPacketLoss", allow_none=True, required=True)
    median_bitrate_kbps = fields.Float(attribute="medianBitrateKbps", allow_none=True, required=True)


class MeetingOut(OutputSchema):
    """`Meeting` (CONTRACT §4), plus `title`, `outcome` and `quality` (extensions)."""

    id = fields.String(required=True)
    booking_id = fields.String(allow_none=True, required=True)
    host_id = fields.String(required=True)
    participant_ids = fields.List(fields.String(), required=True)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    title = fields.String(attribute="title_text", allow_none=True, required=True)
    started_at = UtcDateTime(allow_none=True, required=True)
    ended_at = UtcDateTime(allow_none=True, required=True)
    duration_seconds = fields.Integer(allow_none=True, required=True)
    outcome = fields.String(allow_none=True, required=True)
    quality = fields.List(fields.Nested(QualityOut), required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(allow_none=True, required=True)


MeetingPageOut = page_of(MeetingOut, "MeetingPageOut")


class IceServerOut(OutputSchema):
    """An RTCIceServer: `{urls, username?, credential?}` (TURN entries carry short-lived credentials)."""

    urls = fields.List(fields.String(), required=True)
    username = fields.String()
    credential = fields.String()

    @post_dump
    def _drop_unset(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None}


class JitsiOut(OutputSchema):
    """`{domain, room, jwt}`: a Jitsi room and the caller's token for it."""

    domain = fields.String(required=True)
    room = fields.String(required=True)
    jwt = fields.String(required=True)


class ParticipantOut(OutputSchema):
    """A seat: `{userId, role: host | guest, state: admitted | waiting, muted: [kind], sharing}`."""

    user_id = fields.String(required=True)
    role = fields.String(required=True)
    state = fields.String(required=True)
    muted = fields.List(fields.String(), required=True)
    sharing = fields.Boolean(required=True)


class JoinOut(OutputSchema):
    """The ack of `meeting:join`: `{meeting, status, participants, iceServers, jitsi}` (waiting: no servers)."""

    meeting = fields.Nested(MeetingOut, required=True)
    status = fields.String(required=True, validate=validate.OneOf(("admitted", "waiting")))
    participants = fields.List(fields.Nested(ParticipantOut), required=True)
    ice_servers = fields.List(fields.Nested(IceServerOut), required=True)
    jitsi = fields.Nested(JitsiOut, allow_none=True, required=True)


class AdmissionOut(OutputSchema):
    """`lobby:admitted` `{meetingId, iceServers, jitsi}` / `lobby:denied` `{meetingId}`."""

    meeting_id = fields.String(required=True)
    ice_servers = fields.List(fields.Nested(IceServerOut), required=True)
    jitsi = fields.Nested(JitsiOut, allow_none=True, required=True)


class DeniedOut(OutputSchema):
    """`lobby:denied` `{meetingId}`."""

    meeting_id = fields.String(required=True)


class SeatEventOut(OutputSchema):
    """`{meetingId, userId, name?, role?}`: who joined, left, waits or was kicked."""

    meeting_id = fields.String(required=True)
    user_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    role = fields.String(allow_none=True)


class MutedOut(OutputSchema):
    """`participant:muted` `{meetingId, userId, kind}`."""

    meeting_id = fields.String(required=True)
    user_id = fields.String(required=True)
    kind = fields.String(required=True)


class ScreenOut(OutputSchema):
    """`participant:screen` `{meetingId, userId, sharing}` (extension)."""

    meeting_id = fields.String(required=True)
    user_id = fields.String(required=True)
    sharing = fields.Boolean(required=True)


class SignalOut(OutputSchema):
    """`signal` `{meetingId, from, type, payload}`."""

    meeting_id = fields.String(required=True)
    from_id = fields.String(required=True, data_key="from")
    type = fields.String(required=True)
    payload = SignalPayload(required=True)

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """The fields above, written out by hand for a record (a trickle relays thousands a second)."""
        if many or isinstance(obj, dict):
            return super().dump(obj, many=many)
        return {"meetingId": obj.meeting_id, "from": obj.from_id, "type": obj.type, "payload": obj.payload}


class RecordingStatusOut(OutputSchema):
    """`recording:status` `{meetingId, state: recording | stopped, consents: {userId: bool}, recordingId}`."""

    meeting_id = fields.String(required=True)
    state = fields.String(required=True)
    consents = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True)
    recording_id = fields.String(allow_none=True, required=True)


class RecordingOut(OutputSchema):
    """`Recording {id, meetingId, startedAt, stoppedAt?, startedBy, consents, stopReason}`."""

    id = fields.String(required=True)
    meeting_id = fields.String(required=True)
    started_at = UtcDateTime(required=True)
    stopped_at = UtcDateTime(allow_none=True, required=True)
    started_by = fields.String(required=True)
    consents = fields.List(fields.String(), required=True)
    stop_reason = fields.String(allow_none=True, required=True)


RecordingPageOut = page_of(RecordingOut, "RecordingPageOut")


class AuditEntryOut(OutputSchema):
    """`{id, meetingId, actorId (null: the system), action, targetId, at}`."""

    id = fields.String(required=True)
    meeting_id = fields.String(required=True)
    actor_id = fields.String(allow_none=True, required=True)
    action = fields.String(required=True)
    target_id = fields.String(allow_none=True, required=True)
    at = UtcDateTime(required=True)


AuditPageOut = page_of(AuditEntryOut, "AuditPageOut")
