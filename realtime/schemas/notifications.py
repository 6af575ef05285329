"""Request payloads of /notifications."""
from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import b64url_decode
from handlers.notifications.categories import CATEGORIES
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

CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ROLES = ("client", "therapist", "admin")


def Flag(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - reads like a field type
    """A JSON boolean only (no "yes", 1 or "no")."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class ListNotifications(Pagination):
    """`notification:list {unreadOnly?, afterSeq?, limit?, cursor?}`."""

    unread_only = Flag(load_default=False)
    after_seq = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 2 ** 53))


class ReadNotifications(RequestSchema):
    """`notification:read {ids}`."""

    ids = fields.List(Id(), required=True, validate=validate.Length(1, 100))


class PushSwitch(fields.Field):
    """A category's push preference: true, false or "always"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool | str:
        if value is True or value is False or value == "always":
            return value
        raise ValidationError('Must be true, false or "always".')


class CategoryPreference(RequestSchema):
    """`{inApp?, push?, email?}`."""

    in_app = Flag()
    push = PushSwitch()
    email = Flag()


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not a known IANA time zone.") from None


class QuietHours(RequestSchema):
    """`{start: "22:00", end: "07:00", timezone}`."""

    start = fields.String(required=True, validate=validate.Regexp(CLOCK, error="Must be HH:MM."))
    end = fields.String(required=True, validate=validate.Regexp(CLOCK, error="Must be HH:MM."))
    timezone = fields.String(required=True, validate=[validate.Length(1, 64), _zone])


class SetPreferences(RequestSchema):
    """`preferences:set` (partial Preferences; `quietHours: null` removes them)."""

    categories = fields.Dict(keys=fields.String(validate=validate.OneOf(CATEGORIES)),
                             values=fields.Nested(CategoryPreference))
    quiet_hours = fields.Nested(QuietHours, allow_none=True)


def _p256_point(text: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = b64url_decode(text)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (ValueError, TypeError):
        raise ValidationError("Must be an uncompressed P-256 point (65 bytes, base64url).") from None


def _auth_secret(text: str) -> None:
    try:
        if len(b64url_decode(text)) != 16:
            raise ValueError
    except (ValueError, TypeError):
        raise ValidationError("Must be a 16-byte secret (base64url).") from None


class PushKeys(RequestSchema):
    """A PushSubscription's keys."""

    p256dh = fields.String(required=True, validate=[validate.Length(1, 200), _p256_point])
    auth = fields.String(required=True, validate=[validate.Length(1, 64), _auth_secret])


class Subscribe(RequestSchema):
    """`push:subscribe {endpoint, keys: {p256dh, auth}, expirationTime?}`."""

    endpoint = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                          validate=validate.Length(1, 2048))
    keys = fields.Nested(PushKeys, required=True)
    expiration_time = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 2 ** 53))
    request_id = RequestId(load_default=None)


class Unsubscribe(RequestSchema):
    """`push:unsubscribe {endpoint}`."""

    endpoint = fields.String(required=True, validate=validate.Length(1, 2048))


class Broadcast(RequestSchema):
    """`notification:broadcast {role, title, body, category: "system"}` (admin)."""

    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    title = fields.String(required=True, validate=validate.Length(1, 200))
    body = fields.String(required=True, validate=validate.Length(0, 1000))
    category = fields.String(load_default="system", validate=validate.OneOf(["system"]))
    request_id = RequestId(load_default=None)


class Stats(RequestSchema):
    """`notification:stats {days?}` (admin): the last 1..90 days, default 7."""

    days = fields.Integer(load_default=7, validate=validate.Range(1, 90))


# -- what the server sends ---------------------------------------------------------------------------

class NotificationOut(OutputSchema):
    """`Notification` (CONTRACT §6)."""

    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    title = fields.String(required=True)
    body = fields.String(required=True)
    data = fields.Dict(required=True)
    critical = fields.Boolean(required=True)
    read_at = UtcDateTime(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)


NotificationPageOut = page_of(NotificationOut, "NotificationPageOut")


class UnreadCountOut(OutputSchema):
    """`{unreadCount}` (`notification:unread`, and the ack of reads and `notification:unread-count`)."""

    unread_count = fields.Integer(required=True)


class SwitchesOut(OutputSchema):
    """`{inApp, push, email}`: `push` is true, false or "always"; `email` (extension) is digested."""

    in_app = fields.Boolean(required=True)
    push = fields.Raw(required=True, metadata={"description": 'true, false or "always"'})
    email = fields.Boolean(required=True)


class QuietHoursOut(OutputSchema):
    """`{start, end, timezone}`."""

    start = fields.String(required=True)
    end = fields.String(required=True)
    timezone = fields.String(required=True)


class PreferencesOut(OutputSchema):
    """`Preferences`: every category's switches, and quiet hours (null when none)."""

    categories = fields.Dict(keys=fields.String(validate=validate.OneOf(CATEGORIES)),
                             values=fields.Nested(SwitchesOut), required=True)
    quiet_hours = fields.Nested(QuietHoursOut, allow_none=True, required=True)


class SetEmail(RequestSchema):
    """`profile:set-email {email}`."""

    email = fields.Email(required=True, validate=validate.Length(3, 254))


class EmailPendingOut(OutputSchema):
    """The ack of `profile:set-email`: `{pending, expiresAt}` (the confirmation link's expiry)."""

    pending = fields.String(required=True)
    expires_at = UtcDateTime(required=True)


class SubscribedOut(OutputSchema):
    """The ack of `push:subscribe`: `{subscriptionId}`."""

    subscription_id = fields.String(required=True)


class CountOut(OutputSchema):
    """The ack of `notification:broadcast`: `{count}` users notified."""

    count = fields.Integer(required=True)


class CategoryStatsOut(OutputSchema):
    """Delivery counts of one category."""

    sent = fields.Integer(required=True)
    delivered_in_app = fields.Integer(required=True)
    pushed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    read = fields.Integer(required=True)


class StatsOut(OutputSchema):
    """The ack of `notification:stats`: `{since, until, categories: {category: counts}}`."""

    since = UtcDateTime(required=True)
    until = UtcDateTime(required=True)
    categories = fields.Dict(keys=fields.String(), values=fields.Nested(CategoryStatsOut), required=True)
