"""Schema building blocks: camelCase on the wire, snake_case in Python, one time format everywhere."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from clock import iso, parse_iso


def camel(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class CamelSchema(Schema):
    """Every field under its camelCase name (an explicit `data_key` is camel-cased too)."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        """Expose every field under its camelCase name."""
        field_obj.data_key = camel(field_obj.data_key or field_name)


class RequestSchema(CamelSchema):
    """Base for request payloads: camelCase keys, unknown keys refused."""

    class Meta:
        unknown = RAISE

    def quick_load(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """What `load(raw)` returns, for a request a hot path checks by hand (a schema of a frequent event
        overrides this); None: let `load` decide (so every refusal and its messages stay the schema's)."""
        return None


class OutputSchema(CamelSchema):
    """Base for what the server sends (acks and events): read from records' attributes or dict keys."""


class Empty(RequestSchema):
    """A request that takes no arguments."""


class Nothing(OutputSchema):
    """An ack with no data: `{}`."""


class UtcDateTime(fields.Field):
    """A time: read from any ISO 8601 text (aware UTC datetime), written as ISO 8601 UTC with ms and `Z`."""

    default_error_messages = {"invalid": "Not a valid ISO 8601 time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            return parse_iso(value)
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso(value)


ID_LENGTH = 128  # the longest resource id


def Id(**kwargs: Any) -> fields.String:  # noqa: N802 - reads like a field type
    """A resource id: a non-empty string of at most ID_LENGTH characters."""
    return fields.String(validate=validate.Length(1, ID_LENGTH), **kwargs)


def RequestId(**kwargs: Any) -> fields.String:  # noqa: N802
    """The idempotency key of a creating request (1-64 characters)."""
    return fields.String(validate=validate.Length(1, 64), **kwargs)


class Pagination(RequestSchema):
    """`{limit?: 1..100 (default 50), cursor?}`."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=512))


def page_of(item: type[Schema], name: str) -> type[OutputSchema]:
    """`{items: [item], nextCursor}`: one page of a cursor-paginated list."""
    return type(name, (OutputSchema,), {
        "items": fields.List(fields.Nested(item), required=True),
        "next_cursor": fields.String(allow_none=True, required=True),
        "__doc__": f"A page of {item.__name__}: `{{items, nextCursor}}` (null on the last page).",
    })


class RefreshSession(RequestSchema):
    """`session:refresh {token}`."""

    token = fields.String(required=True, validate=validate.Length(1, 8192))


class SessionRefreshed(OutputSchema):
    """The ack of `session:refresh`: the new disconnect deadline."""

    expires_at = UtcDateTime(required=True)


class UserLookup(RequestSchema):
    """`user:lookup {ids}`."""

    ids = fields.List(Id(), required=True, validate=validate.Length(1, 100))


class PersonOut(OutputSchema):
    """`{id, name, role}`: a user as other people see them (name from their token's `name`)."""

    id = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)
    role = fields.String(required=True)


class PeopleOut(OutputSchema):
    """The ack of `user:lookup`: `{items: [{id, name, role}]}` (strangers left out)."""

    items = fields.List(fields.Nested(PersonOut), required=True)


class DocumentLinkOut(OutputSchema):
    """`{url, expiresAt}`: a generated document (a PDF), downloadable once from `url` until `expiresAt`."""

    url = fields.String(required=True)
    expires_at = UtcDateTime(required=True)


class SessionExpired(OutputSchema):
    """`session:expired`: the token ran out and was not refreshed; the socket is disconnected next."""

    code = fields.String(required=True)
    message = fields.String(required=True)


__all__ = ["CamelSchema", "Empty", "Id", "Nothing", "OutputSchema", "Pagination", "RefreshSession", "RequestId",
           "RequestSchema", "SessionExpired", "SessionRefreshed", "UtcDateTime", "ValidationError", "fields",
           "page_of", "validate"]
