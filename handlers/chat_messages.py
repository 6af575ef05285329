"""Messages: send (idempotent, seq per conversation), edit, delete, react, history, search."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from handlers.auth import User
from handlers.chat_access import ChatDeps
from handlers.chat_conversations import ConversationHandler
from handlers.chat_moderation import ModerationHandler
from handlers.chat_rules import is_emoji
from handlers.errors import Forbidden, InvalidPayload, NotFound, PreconditionFailed
from stores.blind_index import words
from stores.chat import Conversation
from stores.messages import MAX_REACTION_KEYS, Message
from stores.mongo import utcnow


# A seq is allocated a moment before its message is written, so a fresh gap may still fill in;
# one older than this belongs to a send that failed and stays a gap forever.
GAP_SETTLE = timedelta(seconds=5)


def _settled_prefix(items: list[Message], first: int, more: bool) -> tuple[list[Message], bool]:
    """Catch-up must never step over a message still being written: stop before a fresh gap."""
    expected, settled_before = first, utcnow() - GAP_SETTLE
    for index, message in enumerate(items):
        if message.seq != expected and message.created_at > settled_before:
            return items[:index], True
        expected = message.seq + 1
    return items, more


async def _nobody() -> set[str]:
    return set()


class MessageHandler:
    """Message requests of /chat."""

    def __init__(self, deps: ChatDeps, conversations: ConversationHandler, moderation: ModerationHandler) -> None:
        self.deps = deps
        self.conversations = conversations
        self.moderation = moderation

    async def send(self, sid: str, user: User, conversation_id: str, request_id: str, text: str = "",
                   attachment_ids: list[str] | None = None, reply_to_id: str | None = None) -> dict[str, Any]:
        """Store and deliver a message; a repeated requestId returns the first message unchanged."""
        self.moderation.check_text(text)
        membership = await self.deps.conversations.membership(conversation_id)
        if membership is None or user.id not in membership.member_ids:
            raise NotFound("No such conversation")
        existing, blockers = await asyncio.gather(
            self.deps.messages.by_request(user.id, request_id),
            self.deps.blocks.blockers_of(user.id) if membership.direct else _nobody())
        if existing is not None:
            return existing.to_dict()
        if blockers & membership.member_ids:
            raise Forbidden("You cannot message this user")
        attachments = await self._attachments(user, attachment_ids or [])
        if reply_to_id is not None:
            await self._check_reply(conversation_id, reply_to_id)
        conversation = await self.deps.conversations.allocate_seq(conversation_id)
        message, created = await self.deps.messages.insert(conversation.id, conversation.last_seq, user.id,
                                                           request_id, text, attachments, reply_to_id)
        if not created:  # a concurrent repeat won the race: its seq stands, this one stays unused
            return message.to_dict()
        return await self._deliver(sid, user, conversation, message, attachment_ids or [])

    async def _deliver(self, sid: str, user: User, conversation: Conversation, message: Message,
                       attachment_ids: list[str]) -> dict[str, Any]:
        await self.deps.uploads.share(attachment_ids, conversation.id)
        data = message.to_dict()
        await self.deps.to_conversation(conversation.id, "message:created", data, skip_sid=sid)
        await self.conversations.move(conversation.id, user.id, message.seq, read=True, broadcast=False)
        live = await self.deps.live_viewers(conversation.id)
        absent = [member for member in conversation.member_ids if member != user.id and member not in live]
        await self.deps.bus.publish("message.created", message=data, conversation=conversation.to_dict(),
                                    sender=user.to_dict(), absent_member_ids=absent)
        if await self.moderation.safety_check(user, conversation, message):
            return {**data, "safetyResources": self.deps.config.chat_safety_resources}
        return data

    async def _attachments(self, user: User, attachment_ids: list[str]) -> list[dict[str, Any]]:
        """The sender's own uploads; any other id is refused as `invalid_payload`."""
        if not attachment_ids:
            return []
        found = await self.deps.uploads.owned(list(dict.fromkeys(attachment_ids)), user.id)
        if len(found) != len(set(attachment_ids)):
            raise InvalidPayload("Unknown attachment", {"attachmentIds": ["Attach only files you uploaded."]})
        return found

    async def _check_reply(self, conversation_id: str, reply_to_id: str) -> None:
        replied = await self.deps.messages.get(reply_to_id)
        if replied is None or replied.conversation_id != conversation_id:
            raise InvalidPayload("Unknown message", {"replyToId": ["Not a message of this conversation."]})

    async def edit(self, user: User, message_id: str, text: str) -> dict[str, Any]:
        """Replace the sender's own text within the edit window; broadcast `message:updated`."""
        message, conversation = await self.deps.message(user, message_id)
        if message.sender_id != user.id:
            raise Forbidden("Only the sender may edit a message")
        if message.deleted:
            raise PreconditionFailed("The message was deleted")
        if not text.strip() and not message.attachments:
            raise InvalidPayload("Text is required", {"text": ["Must not be blank."]})
        self.moderation.check_text(text)
        not_before = utcnow() - timedelta(minutes=self.deps.config.chat_edit_window_minutes)
        if message.created_at < not_before:
            raise PreconditionFailed("The edit window has closed")
        edited = await self.deps.messages.edit(message, text, not_before)
        if edited is None:
            raise PreconditionFailed("The message changed meanwhile, or the edit window has closed")
        data = edited.to_dict()
        await self.deps.to_conversation(conversation.id, "message:updated", data)
        await self.moderation.safety_check(user, conversation, edited)
        return data

    async def delete(self, user: User, message_id: str) -> dict[str, Any]:
        """Wipe a message (sender, or an admin acting as moderator); broadcast `message:deleted`."""
        message = await self.deps.messages.get(message_id)
        if message is None or not (user.is_admin or
                                   await self.deps.conversations.get_for_member(message.conversation_id, user.id)):
            raise NotFound("No such message")
        if message.sender_id != user.id and not user.is_admin:
            raise Forbidden("Only the sender or an admin may delete a message")
        if await self.deps.messages.delete(message.id) is not None:
            await self.deps.to_conversation(message.conversation_id, "message:deleted",
                                            {"conversationId": message.conversation_id, "messageId": message.id})
        return {"messageId": message.id}

    async def react(self, user: User, message_id: str, emoji: str) -> dict[str, Any]:
        """Toggle the caller's reaction; broadcast `message:reactions`."""
        if not is_emoji(emoji):
            raise InvalidPayload("Not an emoji", {"emoji": ["Must be a single emoji."]})
        message, conversation = await self.deps.message(user, message_id)
        if message.deleted:
            raise PreconditionFailed("The message was deleted")
        mine = user.id in message.reactions.get(emoji, [])
        if not mine and await self.deps.messages.reaction_count(message.id) >= MAX_REACTION_KEYS:
            raise PreconditionFailed("This message has too many reactions")
        updated = await self.deps.messages.toggle_reaction(message.id, emoji, user.id)
        reactions = updated.reactions if updated else {}
        data = {"messageId": message.id, "conversationId": conversation.id, "reactions": reactions}
        await self.deps.to_conversation(conversation.id, "message:reactions", data)
        return {"messageId": message.id, "reactions": reactions}

    async def history(self, user: User, conversation_id: str, limit: int, before_seq: int | None = None,
                      after_seq: int | None = None) -> dict[str, Any]:
        """Messages in seq order: after `afterSeq` (catch-up), before `beforeSeq`, or the latest."""
        conversation = await self.deps.conversation(user, conversation_id)
        top = conversation.last_seq if before_seq is None else min(before_seq - 1, conversation.last_seq)
        if after_seq is not None:
            first, last = after_seq + 1, min(top, after_seq + limit)
            more = last < top
        else:
            first, last = max(1, top - limit + 1), top
            more = first > 1
        if first > last:
            return {"items": [], "hasMore": False}
        items = await self.deps.messages.seq_range(conversation.id, first, last)
        if after_seq is not None:
            items, more = _settled_prefix(items, first, more)
        return {"items": [message.to_dict() for message in items], "hasMore": more}

    async def search(self, user: User, query: str, limit: int, conversation_id: str | None = None) -> dict[str, Any]:
        """Messages containing every query word, newest first, only from the caller's conversations."""
        terms = list(dict.fromkeys(words(query)))
        if not terms:
            raise InvalidPayload("The query has no words", {"query": ["Give at least one word."]})
        if conversation_id is not None:
            ids = [(await self.deps.conversation(user, conversation_id)).id]
        else:
            ids = await self.deps.conversations.ids_for_member(user.id)
        found = await self.deps.messages.search(terms[:16], ids, limit) if ids else []
        return {"items": [message.to_dict() for message in found]}
