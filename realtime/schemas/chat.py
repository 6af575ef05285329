"""Payload schemas of /chat (CONTRACT §2)."""
from __future__ import annotations

from typing import Any

from marshmallow import validates_schema

from realtime.schemas import Id, Pagination, RequestId, RequestSchema, ValidationError, fields, validate

MAX_TEXT = 4000
MAX_GROUP_MEMBERS = 50
MAX_ATTACHMENTS = 10


def _seq(**kwargs: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(0, 2 ** 53), **kwargs)


class OpenConversation(RequestSchema):
    """`{memberIds, title?, requestId?}`."""

    member_ids = fields.List(Id(), required=True, validate=validate.Length(1, MAX_GROUP_MEMBERS - 1))
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    request_id = RequestId(load_default=None)


class ConversationRef(RequestSchema):
    """`{conversationId}`."""

    conversation_id = Id(required=True)


class SendMessage(RequestSchema):
    """`{conversationId, text?, attachmentIds?, replyToId?, requestId}`: text or attachments."""

    conversation_id = Id(required=True)
    text = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT))
    attachment_ids = fields.List(Id(), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS))
    reply_to_id = Id(load_default=None, allow_none=True)
    request_id = RequestId(required=True)

    @validates_schema
    def _text_or_attachments(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("text", "").strip() and not data.get("attachment_ids"):
            raise ValidationError("Give text or attachments.", "text")


class EditMessage(RequestSchema):
    """`{messageId, text}`."""

    message_id = Id(required=True)
    text = fields.String(required=True, validate=validate.Length(max=MAX_TEXT))


class MessageRef(RequestSchema):
    """`{messageId}`."""

    message_id = Id(required=True)


class ReactMessage(MessageRef):
    """`{messageId, emoji}` (checked to be one emoji by the handler)."""

    emoji = fields.String(required=True, validate=validate.Length(1, 64))


class History(RequestSchema):
    """`{conversationId, beforeSeq?, afterSeq?, limit?}`."""

    conversation_id = Id(required=True)
    before_seq = _seq(load_default=None, allow_none=True)
    after_seq = _seq(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))


class Search(RequestSchema):
    """`{query, conversationId?, limit?}`."""

    query = fields.String(required=True, validate=validate.Length(1, 200))
    conversation_id = Id(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 50))


class Marker(RequestSchema):
    """`{conversationId, seq}`."""

    conversation_id = Id(required=True)
    seq = _seq(required=True)


class ReportMessage(MessageRef):
    """`{messageId, reason}`."""

    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class UserRef(RequestSchema):
    """`{userId}`."""

    user_id = Id(required=True)


class ReportList(Pagination):
    """Admin review list: pagination and `status?` (open by default)."""

    status = fields.String(load_default="open", validate=validate.OneOf(("open", "resolved")))


class ReportRef(RequestSchema):
    """`{reportId}`."""

    report_id = Id(required=True)
