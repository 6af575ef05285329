"""The small objects chat pushes and answers besides whole messages and conversations (CONTRACT §2)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stores.chat.conversations import Conversation
from stores.chat.messages import Message
from stores.chat.moderation import Report


@dataclass(frozen=True)
class SentMessage(Message):
    """A message as its sender's ack carries it: with crisis resources when it matched a crisis phrase."""

    safety_resources: str | None = None


@dataclass(frozen=True)
class ConversationSummary(Conversation):
    """A conversation in the caller's list: with their unread count and the newest message."""

    unread_count: int = 0
    last_message: Message | None = None


@dataclass(frozen=True)
class JoinedConversation:
    """The answer to joining a conversation: it, and who of its members is online."""

    conversation: Conversation
    presence: dict[str, str]


@dataclass(frozen=True)
class MessagePage:
    """Messages by seq, whether more lie in the direction asked, and the last seq the page covers (items of
    users in a block with the caller are left out of groups: continue from `through_seq`)."""

    items: list[Message]
    has_more: bool
    through_seq: int | None = None


@dataclass(frozen=True)
class Found:
    """Search results, newest first."""

    items: list[Message]


@dataclass(frozen=True)
class MessageRemoved:
    """`message:deleted`: the message's text and attachments are gone; id and seq stay."""

    conversation_id: str
    message_id: str


@dataclass(frozen=True)
class Reactions:
    """`message:reactions`: who reacted with what to a message."""

    conversation_id: str
    message_id: str
    reactions: dict[str, list[str]]


@dataclass(frozen=True)
class Receipt:
    """`receipt:updated`: how far a member has received and read a conversation."""

    conversation_id: str
    user_id: str
    delivered_seq: int
    read_seq: int


@dataclass(frozen=True)
class Typing:
    """`typing`: a member started or stopped typing."""

    conversation_id: str
    user_id: str
    is_typing: bool


@dataclass(frozen=True)
class PresenceChange:
    """`presence:changed`: a contact came online or went offline."""

    user_id: str
    status: str
    last_seen_at: datetime


@dataclass(frozen=True)
class SafetyAlert:
    """`safety:alert` to the conversation's therapists and the admins (no message text)."""

    conversation_id: str
    message_id: str
    user_id: str


@dataclass(frozen=True)
class ReportReview:
    """A report on the admin review list, with the reported message (None once deleted for good)."""

    report: Report
    message: Message | None


