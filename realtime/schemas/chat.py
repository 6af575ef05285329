"""Payload schemas of /chat (CONTRACT §2)."""
from __future__ import annotations

from typing import Any

from marshmallow import pre_dump, validates_schema

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

MAX_TEXT = 4000
MAX_GROUP_MEMBERS = 10_001  # hard cap; CHAT_GROUP_MAX_MEMBERS (default 49 besides the creator) is checked by chat
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
    """`{messageId, reason, requestId?}`."""

    reason = fields.String(required=True, validate=validate.Length(1, 1000))
    request_id = RequestId(load_default=None)


class UserRef(RequestSchema):
    """`{userId}`."""

    user_id = Id(required=True)


class ReportList(Pagination):
    """Admin review list: pagination and `status?` (open by default)."""

    status = fields.String(load_default="open", validate=validate.OneOf(("open", "resolved")))


class ReportRef(RequestSchema):
    """`{reportId}`."""

    report_id = Id(required=True)


# -- what the server sends ---------------------------------------------------------------------------

class UploadRef(RequestSchema):
    """`{uploadId}`."""

    upload_id = Id(required=True)


class UploadLinkOut(OutputSchema):
    """The ack of `upload:link`: `{url, expiresAt}` (a path on this server; no token needed until expiresAt)."""

    url = fields.String(required=True)
    expires_at = UtcDateTime(required=True)


class AttachmentOut(OutputSchema):
    """`{id, name, mime, size, url}`: a file sent with a message."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    mime = fields.String(required=True)
    size = fields.Integer(required=True)
    url = fields.Function(lambda attachment: f"/api/uploads/{attachment.id}", required=True)


class MessageOut(OutputSchema):
    """`Message` (CONTRACT §2)."""

    id = fields.String(required=True)
    conversation_id = fields.String(required=True)
    seq = fields.Integer(required=True)
    sender_id = fields.String(required=True)
    text = fields.String(required=True)
    attachments = fields.List(fields.Nested(AttachmentOut), required=True)
    reply_to_id = fields.String(allow_none=True, required=True)
    reactions = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    created_at = UtcDateTime(required=True)
    edited_at = UtcDateTime(allow_none=True, required=True)
    deleted = fields.Boolean(required=True)


class SentMessageOut(MessageOut):
    """The ack of `message:send`: the Message, plus `safetyResources` when it matched a crisis phrase."""

    safety_resources = fields.String()


class ConversationOut(OutputSchema):
    """`Conversation` (CONTRACT §2)."""

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("client_client", "client_therapist",
                                                                 "therapist_therapist", "group")))
    member_ids = fields.List(fields.String(), required=True)
    title = fields.String(allow_none=True, required=True)
    created_by = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    last_activity_at = UtcDateTime(required=True)
    last_seq = fields.Integer(required=True)


class ConversationSummaryOut(ConversationOut):
    """A Conversation in `conversation:list`, with the caller's `unreadCount` and the `lastMessage`."""

    unread_count = fields.Integer(required=True)
    last_message = fields.Nested(MessageOut, allow_none=True, required=True)


ConversationPageOut = page_of(ConversationSummaryOut, "ConversationPageOut")


class JoinedOut(OutputSchema):
    """The ack of `conversation:join`: `{conversation, presence: {userId: "online" | "offline"}}`."""

    conversation = fields.Nested(ConversationOut, required=True)
    presence = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(("online", "offline"))),
                           required=True)


class MessagePageOut(OutputSchema):
    """The ack of `message:history`: `{items, hasMore, throughSeq}` in seq order (throughSeq: extension)."""

    items = fields.List(fields.Nested(MessageOut), required=True)
    has_more = fields.Boolean(required=True)
    through_seq = fields.Integer(allow_none=True, required=True)


class FoundOut(OutputSchema):
    """The ack of `message:search`: `{items}`, newest first."""

    items = fields.List(fields.Nested(MessageOut), required=True)


class MessageRemovedOut(OutputSchema):
    """`message:deleted` `{conversationId, messageId}` (the ack of `message:delete` carries `messageId`)."""

    conversation_id = fields.String(required=True)
    message_id = fields.String(required=True)


class ReactionsOut(OutputSchema):
    """`message:reactions` `{conversationId, messageId, reactions: {emoji: [userId]}}`."""

    conversation_id = fields.String(required=True)
    message_id = fields.String(required=True)
    reactions = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class ReceiptOut(OutputSchema):
    """`receipt:updated` `{conversationId, userId, deliveredSeq, readSeq}`."""

    conversation_id = fields.String(required=True)
    user_id = fields.String(required=True)
    delivered_seq = fields.Integer(required=True)
    read_seq = fields.Integer(required=True)


class TypingOut(OutputSchema):
    """`typing` `{conversationId, userId, isTyping}` (never to the typist's own sockets)."""

    conversation_id = fields.String(required=True)
    user_id = fields.String(required=True)
    is_typing = fields.Boolean(required=True)


class PresenceOut(OutputSchema):
    """`presence:changed` `{userId, status, lastSeenAt}` to everyone sharing a conversation."""

    user_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("online", "offline")))
    last_seen_at = UtcDateTime(required=True)


class SafetyAlertOut(OutputSchema):
    """`safety:alert` `{conversationId, messageId, userId}` to the conversation's therapists and admins."""

    conversation_id = fields.String(required=True)
    message_id = fields.String(required=True)
    user_id = fields.String(required=True)


class ReportOut(OutputSchema):
    """A message report (`report:created` to admins; `report:resolve` ack)."""

    id = fields.String(required=True)
    message_id = fields.String(required=True)
    conversation_id = fields.String(required=True)
    reporter_id = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("open", "resolved")))
    created_at = UtcDateTime(required=True)


class ReportReviewOut(ReportOut):
    """A report on the admin review list, with the reported `message` (null when gone)."""

    message = fields.Nested(MessageOut, allow_none=True, required=True)

    @pre_dump
    def _flatten(self, review: Any, **kwargs: Any) -> dict[str, Any]:
        return {**vars(review.report), "message": review.message}


ReportPageOut = page_of(ReportReviewOut, "ReportPageOut")


class ReportCreatedOut(OutputSchema):
    """The ack of `message:report`: `{reportId}`."""

    report_id = fields.String(required=True)


class DeletedOut(OutputSchema):
    """The ack of `message:delete`: `{messageId}`."""

    message_id = fields.String(required=True)


class ReactedOut(OutputSchema):
    """The ack of `message:react`: `{messageId, reactions}`."""

    message_id = fields.String(required=True)
    reactions = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
