"""Request payloads of /booking."""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar
from zoneinfo import available_timezones

from marshmallow import post_dump, validates_schema

from clock import iso
from handlers.booking.slots import DEFAULT_POLICY, UNIT_MINUTES, minutes_of
from realtime.schemas.common import (
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

CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
STATUSES = ("pending", "confirmed", "declined", "cancelled", "completed", "no_show")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class Clock(fields.String):
    """A local wall time "HH:MM" (or "24:00") on a 5-minute boundary."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not CLOCK.match(text):
            raise ValidationError("Not a time of day (HH:MM).")
        if minutes_of(text) % UNIT_MINUTES:
            raise ValidationError(f"Must be on a {UNIT_MINUTES}-minute boundary.")
        return text


class Day(fields.String):
    """A calendar date "YYYY-MM-DD"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_day()
        except ValueError:
            return _bad_day()


def _bad_day() -> str:
    raise ValidationError("Not a date (YYYY-MM-DD).")


def _ranges_valid(ranges: list[dict[str, Any]]) -> str | None:
    """Why a list of same-day ranges is invalid (inverted or overlapping), or None."""
    spans = sorted((minutes_of(r["start"]), minutes_of(r["end"])) for r in ranges)
    if any(start >= end for start, end in spans):
        return "A range must end after it starts."
    if any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1)):
        return "Ranges overlap."
    return None


class WeeklyRange(RequestSchema):
    """`{weekday: 0-6 (Monday = 0), start, end}`."""

    weekday = fields.Integer(required=True, strict=True, validate=validate.Range(0, 6))
    start = Clock(required=True)
    end = Clock(required=True)


class Override(RequestSchema):
    """`{date, start?, end?, unavailable?}`: a day off, or other hours that day."""

    date = Day(required=True)
    start = Clock(load_default=None)
    end = Clock(load_default=None)
    unavailable = fields.Boolean(load_default=False)

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        hours = data.get("start") is not None, data.get("end") is not None
        if data.get("unavailable") and any(hours):
            raise ValidationError("A day off has no hours.", "unavailable")
        if not data.get("unavailable") and not all(hours):
            raise ValidationError("Give start and end, or unavailable: true.", "start")


class RefundTier(RequestSchema):
    """`{minHoursBefore, percent}`."""

    min_hours_before = fields.Integer(required=True, strict=True, validate=validate.Range(0, 24 * 365))
    percent = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100))


class Price(RequestSchema):
    """`{amount, currency}`: a session's price in minor units (cents) of an ISO 4217 currency."""

    amount = fields.Integer(required=True, strict=True, validate=validate.Range(0, 10_000_000))
    currency = fields.String(required=True,
                             validate=validate.Regexp(r"^[a-z]{3}$", error="A lower-case ISO 4217 code."))


class Policy(RequestSchema):
    """`{refundTiers, confirmWithinHours, price?, requirePayment?}`."""

    refund_tiers = fields.List(fields.Nested(RefundTier), load_default=lambda: DEFAULT_POLICY["refund_tiers"],
                               validate=validate.Length(1, 10))
    confirm_within_hours = fields.Integer(load_default=24, strict=True, validate=validate.Range(1, 24 * 14))
    price = fields.Nested(Price, load_default=None, allow_none=True)
    require_payment = fields.Boolean(load_default=False)

    @validates_schema
    def _distinct(self, data: dict[str, Any], **kwargs: Any) -> None:
        hours = [tier["min_hours_before"] for tier in data.get("refund_tiers", [])]
        if len(set(hours)) != len(hours):
            raise ValidationError("Each tier needs its own minHoursBefore.", "refundTiers")
        if data.get("require_payment") and not data.get("price"):
            raise ValidationError("A session that requires payment needs a price.", "requirePayment")


def _on_unit(value: int) -> None:
    if value % UNIT_MINUTES:
        raise ValidationError(f"Must be a multiple of {UNIT_MINUTES}.")


def _step(low: int, high: int) -> list[Any]:
    return [validate.Range(low, high), _on_unit]


def _known_zone(name: str) -> None:
    if name not in _zones():
        raise ValidationError("Unknown time zone.")


class SetAvailability(RequestSchema):
    """`availability:set`: the whole availability of the calling therapist."""

    timezone = fields.String(required=True, validate=[validate.Length(1, 64), _known_zone])
    weekly = fields.List(fields.Nested(WeeklyRange), required=True, validate=validate.Length(max=70))
    overrides = fields.List(fields.Nested(Override), load_default=list, validate=validate.Length(max=400))
    session_minutes = fields.Integer(load_default=50, strict=True, validate=_step(15, 240))
    buffer_minutes = fields.Integer(load_default=10, strict=True, validate=_step(0, 240))
    min_notice_minutes = fields.Integer(load_default=120, strict=True, validate=validate.Range(0, 60 * 24 * 30))
    max_days_ahead = fields.Integer(load_default=60, strict=True, validate=validate.Range(1, 365))
    policy = fields.Nested(Policy, load_default=lambda: dict(DEFAULT_POLICY))

    @validates_schema
    def _no_overlaps(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        for weekday in range(7):
            problem = _ranges_valid([r for r in data.get("weekly", []) if r["weekday"] == weekday])
            if problem:
                errors.setdefault("weekly", []).append(f"Weekday {weekday}: {problem}")
        hours = [o for o in data.get("overrides", []) if not o["unavailable"]]
        for day in sorted({o["date"] for o in data.get("overrides", [])}):
            same = [o for o in data["overrides"] if o["date"] == day]
            problem = _ranges_valid([o for o in hours if o["date"] == day])
            if problem or (len(same) > 1 and any(o["unavailable"] for o in same)):
                errors.setdefault("overrides", []).append(f"{day}: {problem or 'A day off has no hours.'}")
        if errors:
            raise ValidationError(errors)


class TherapistRef(RequestSchema):
    """`{therapistId}`."""

    therapist_id = Id(required=True)


class GetAvailability(TherapistRef):
    """`availability:get {therapistId, from, to}`."""

    from_ = UtcDateTime(required=True, data_key="from")
    to = UtcDateTime(required=True)

    @validates_schema
    def _range(self, data: dict[str, Any], **kwargs: Any) -> None:
        span = data["to"] - data["from_"]
        if span.total_seconds() <= 0:
            raise ValidationError("Must be after from.", "to")
        if span.days > 62 or (span.days == 62 and span.seconds):
            raise ValidationError("The range is at most 62 days.", "to")


class CreateBooking(TherapistRef):
    """`booking:create {therapistId, start, requestId, note?}`."""

    start = UtcDateTime(required=True)
    request_id = RequestId(required=True)
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


class BookingRef(RequestSchema):
    """`{bookingId}`."""

    booking_id = Id(required=True)


class WithReason(BookingRef):
    """`{bookingId, reason?}`."""

    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class Reschedule(BookingRef):
    """`booking:reschedule {bookingId, start}`."""

    start = UtcDateTime(required=True)


class ListBookings(Pagination):
    """`booking:list {status?, from?, to?, limit?, cursor?}`."""

    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    from_ = UtcDateTime(load_default=None, data_key="from")
    to = UtcDateTime(load_default=None)


# -- what the server sends ---------------------------------------------------------------------------

class WeeklyRangeOut(OutputSchema):
    """`{weekday, start, end}`."""

    weekday = fields.Integer(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)


class OverrideOut(OutputSchema):
    """`{date, start?, end?, unavailable?}` (absent keys are not set)."""

    date = fields.String(required=True)
    start = fields.String()
    end = fields.String()
    unavailable = fields.Boolean()

    @post_dump
    def _drop_unset(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None and value is not False}


class RefundTierOut(OutputSchema):
    """`{minHoursBefore, percent}`."""

    min_hours_before = fields.Integer(required=True)
    percent = fields.Integer(required=True)


class PriceOut(OutputSchema):
    """`{amount, currency}` (amount in minor units)."""

    amount = fields.Integer(required=True)
    currency = fields.String(required=True)


class PolicyOut(OutputSchema):
    """`{refundTiers, confirmWithinHours, price, requirePayment}`: the policy, snapshotted into every booking."""

    refund_tiers = fields.List(fields.Nested(RefundTierOut), required=True)
    confirm_within_hours = fields.Integer(required=True)
    price = fields.Nested(PriceOut, allow_none=True, required=True, dump_default=None)
    require_payment = fields.Boolean(required=True, dump_default=False)


class AvailabilityOut(OutputSchema):
    """`Availability`: a therapist's hours (local, in `timezone`), overrides, session shape and policy."""

    therapist_id = fields.String(required=True)
    timezone = fields.String(attribute="rules.timezone", required=True)
    weekly = fields.List(fields.Nested(WeeklyRangeOut), attribute="rules.weekly", required=True)
    overrides = fields.List(fields.Nested(OverrideOut), attribute="rules.overrides", required=True)
    session_minutes = fields.Integer(attribute="rules.session_minutes", required=True)
    buffer_minutes = fields.Integer(attribute="rules.buffer_minutes", required=True)
    min_notice_minutes = fields.Integer(attribute="rules.min_notice_minutes", required=True)
    max_days_ahead = fields.Integer(attribute="rules.max_days_ahead", required=True)
    policy = fields.Nested(PolicyOut, required=True)
    updated_at = UtcDateTime(required=True)


class SlotListField(fields.Field):
    """A list of `(start, end)` as `[{start, end}]` (long lists: written directly, not field by field)."""

    json_schema: ClassVar[dict[str, Any]] = {
        "type": "array", "items": {"type": "object", "required": ["start", "end"], "properties": {
            "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"}}}}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[dict[str, str | None]]:
        return [{"start": iso(start), "end": iso(end)} for start, end in value]


class OpenSlotsOut(OutputSchema):
    """The ack of `availability:get`: `{therapistId, slots: [{start, end}], price, requirePayment}`."""

    therapist_id = fields.String(required=True)
    slots = SlotListField(required=True)
    price = fields.Nested(PriceOut, allow_none=True, required=True)
    require_payment = fields.Boolean(required=True)


class SlotsChangedOut(OutputSchema):
    """`availability:updated` `{therapistId, from, to}`: open slots in [from, to) may have changed."""

    therapist_id = fields.String(required=True)
    start = UtcDateTime(required=True, data_key="from")
    end = UtcDateTime(required=True, data_key="to")


class RefundOut(OutputSchema):
    """`{percent, amount}` (amount is set once billing has refunded)."""

    percent = fields.Integer(required=True)
    amount = fields.Integer(allow_none=True, required=True)


class BookingOut(OutputSchema):
    """`Booking` (CONTRACT §3) as its parties see it."""

    id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    policy = fields.Nested(PolicyOut, required=True)
    cancelled_by = fields.String(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)
    refund = fields.Nested(RefundOut, allow_none=True, required=True)
    payment_status = fields.String(required=True)
    meeting_id = fields.String(allow_none=True, required=True)
    note = fields.String(attribute="note_text", allow_none=True, required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


BookingPageOut = page_of(BookingOut, "BookingPageOut")
