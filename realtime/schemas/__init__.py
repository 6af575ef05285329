"""Marshmallow schemas for every request payload: camelCase on the wire, snake_case in Python."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from clock import parse_iso
from handlers.serialize import camel


class RequestSchema(Schema):
    """Base for request payloads: camelCase keys, unknown keys refused."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        """Expose every field under its camelCase name."""
        field_obj.data_key = camel(field_obj.data_key or field_name)


class Empty(RequestSchema):
    """A request that takes no arguments."""


class UtcDateTime(fields.Field):
    """An ISO 8601 time, returned as an aware UTC datetime."""

    default_error_messages = {"invalid": "Not a valid ISO 8601 time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            return parse_iso(value)
        except ValueError:
            raise self.make_error("invalid") from None


def Id(**kwargs: Any) -> fields.String:  # noqa: N802 - reads like a field type
    """A resource id: a non-empty string of at most 128 characters."""
    return fields.String(validate=validate.Length(1, 128), **kwargs)


def RequestId(**kwargs: Any) -> fields.String:  # noqa: N802
    """The idempotency key of a creating request (1-64 characters)."""
    return fields.String(validate=validate.Length(1, 64), **kwargs)


class Pagination(RequestSchema):
    """`{limit?: 1..100 (default 50), cursor?}`."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=512))


class RefreshSession(RequestSchema):
    """`session:refresh {token}`."""

    token = fields.String(required=True, validate=validate.Length(1, 8192))


__all__ = ["Empty", "Id", "Pagination", "RefreshSession", "RequestId", "RequestSchema", "UtcDateTime",
           "ValidationError", "fields", "validate"]
