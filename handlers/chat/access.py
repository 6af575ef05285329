"""What every chat handler shares: its stores and services, and the membership checks.

A non-member gets `not_found` for any conversation or message id, exactly as for an id
that does not exist, so nothing is learnt about other people's conversations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import Config
from errors import NotFound
from handlers.auth import User
from handlers.events import EventBus
from handlers.publisher import Publisher, room_group
from stores.chat.activity import ActivityWriter
from stores.chat.conversations import Conversation, ConversationStore
from stores.chat.messages import Message, MessageStore
from stores.chat.moderation import BlockStore, ReportStore
from stores.chat.seq import SeqAllocator
from stores.chat.uploads import UploadStore
from stores.sockets import SocketRegistry
from stores.users import UserStore

NAMESPACE = "/chat"


def conv_room(conversation_id: str) -> str:
    """The Socket.IO room of a conversation's live viewers."""
    return f"conv:{conversation_id}"


@dataclass
class ChatDeps:
    """The stores and services the chat handlers share."""

    config: Config
    conversations: ConversationStore
    messages: MessageStore
    blocks: BlockStore
    reports: ReportStore
    users: UserStore
    uploads: UploadStore
    publisher: Publisher
    sockets: SocketRegistry
    bus: EventBus
    seqs: SeqAllocator
    activity: ActivityWriter

    async def conversation(self, user: User, conversation_id: str) -> Conversation:
        """The conversation if the user is a member, else NotFound (with this process's latest activity)."""
        conversation = await self.conversations.get_for_member(conversation_id, user.id)
        if conversation is None:
            raise NotFound("No such conversation")
        return self.current(conversation)

    def current(self, conversation: Conversation) -> Conversation:
        """A stored conversation with the activity this process noted but may not have written yet."""
        return conversation.with_activity(self.activity.known(conversation.id))

    async def message(self, user: User, message_id: str) -> tuple[Message, Conversation]:
        """A message and its conversation if the user is a member, else NotFound."""
        message = await self.messages.get(message_id)
        if message is None:
            raise NotFound("No such message")
        conversation = await self.conversations.get_for_member(message.conversation_id, user.id)
        if conversation is None:
            raise NotFound("No such message")
        return message, self.current(conversation)

    async def to_conversation(self, conversation_id: str, event: str, data: Any, skip_sid: str | None = None,
                              actor: str | None = None) -> None:
        """Emit to the sockets that joined the conversation; none of a user in a block with the `actor`."""
        estranged = await self.blocks.estranged(actor) if actor is not None else frozenset()
        await self.publisher.to_room(NAMESPACE, conv_room(conversation_id), event, data, skip_sid=skip_sid,
                                     skip_users=estranged)

    async def live_viewers(self, conversation_id: str) -> set[str]:
        """Users with a socket joined to the conversation on any process."""
        return await self.sockets.users(room_group(NAMESPACE, conv_room(conversation_id)))
