"""Messages: send (idempotent, seq per conversation), edit, delete, react, history, search."""
from __future__ import annotations

from datetime import timedelta

from clock import utcnow
from errors import Forbidden, InvalidPayload, NotFound, PreconditionFailed, RequestIdReused, Unavailable
from handlers.auth import User
from handlers.chat.access import ChatDeps
from handlers.chat.content_rules import is_emoji
from handlers.chat.conversations import ConversationHandler
from handlers.chat.deltas import Found, MessagePage, MessageRemoved, Reactions, SentMessage
from handlers.chat.moderation import ModerationHandler
from handlers.events import MessageCreated
from stores.chat.blind_index import words
from stores.chat.messages import MAX_REACTION_KEYS, Message, SeqTaken
from stores.chat.uploads import Attachment
from stores.group_commit import Backlogged

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


BUSY = "The server is busy, send again shortly"  # the database is backlogged: nothing was stored
SEQ_ATTEMPTS = 5  # a seq collides only when a counter was behind the store; each retry re-seeds it


class MessageHandler:
    """Message requests of /chat."""

    def __init__(self, deps: ChatDeps, conversations: ConversationHandler, moderation: ModerationHandler) -> None:
        self.deps = deps
        self.conversations = conversations
        self.moderation = moderation

    async def send(self, sid: str, user: User, conversation_id: str, request_id: str, text: str = "",
                   attachment_ids: list[str] | None = None, reply_to_id: str | None = None) -> Message:
        """Store and deliver a message; a repeated requestId returns the first message unchanged.

        The hot path is one group-committed insert: membership and blocks come from caches, the
        seq from a counter, and the conversation's activity is written behind (docs/chat.md).
        """
        self.moderation.check_text(text)
        membership = await self.deps.conversations.membership(conversation_id)
        if membership is None or user.id not in membership.member_ids:
            raise NotFound("No such conversation")
        if membership.direct and await self.deps.blocks.blockers_of(user.id) & membership.member_ids:
            raise Forbidden("You cannot message this user")
        attachments = await self._attachments(user, attachment_ids or [])
        if reply_to_id is not None:
            await self._check_reply(conversation_id, reply_to_id)
        message, created = await self._store(conversation_id, user.id, request_id, text, attachments, reply_to_id)
        if not created:  # a repeat of an earlier send: its message stands, delivered already
            _same_send(message, conversation_id, text, attachment_ids or [], reply_to_id)
            return message
        if membership.direct:
            await self.conversations.engaged(conversation_id, user, membership.member_ids)
        self.deps.activity.note(conversation_id, message.seq, message.created_at, user.id)
        return await self._deliver(sid, user, conversation_id, membership.member_ids, message, attachment_ids or [])

    async def _store(self, conversation_id: str, sender_id: str, request_id: str, text: str,
                     attachments: list[Attachment], reply_to_id: str | None) -> tuple[Message, bool]:
        """Insert with the next seq; a seq some other writer already stored means take a new one."""
        repeat = await self.deps.messages.recent_request(sender_id, request_id)
        if repeat is not None:
            return repeat, False
        if self.deps.messages.backlogged:  # refuse before taking a seq: no gap, the client sends again
            raise Unavailable(BUSY)
        for _ in range(SEQ_ATTEMPTS):
            seq = await self.deps.seqs.next_seq(conversation_id)
            try:
                return await self.deps.messages.insert(conversation_id, seq, sender_id, request_id, text,
                                                       attachments, reply_to_id)
            except SeqTaken:
                await self.deps.seqs.reseed(conversation_id)
            except Backlogged:
                raise Unavailable(BUSY) from None
        raise Unavailable("The conversation is busy, try again")

    async def _deliver(self, sid: str, user: User, conversation_id: str, member_ids: frozenset[str],
                       message: Message, attachment_ids: list[str]) -> Message:
        await self.deps.uploads.share(attachment_ids, conversation_id, message.id)
        await self.deps.to_conversation(conversation_id, "message:created", message, skip_sid=sid, actor=user.id)
        live, estranged = await self.deps.live_viewers(conversation_id), await self.deps.blocks.estranged(user.id)
        absent = [member for member in member_ids if member != user.id and member not in live | estranged]
        await self.deps.bus.publish(MessageCreated(message, user, tuple(absent)))
        if await self.moderation.safety_check(user, conversation_id, member_ids, message):
            return SentMessage(**vars(message), safety_resources=self.deps.config.chat_safety_resources)
        return message

    async def _attachments(self, user: User, attachment_ids: list[str]) -> list[Attachment]:
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

    async def edit(self, user: User, message_id: str, text: str) -> Message:
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
        await self.deps.to_conversation(conversation.id, "message:updated", edited, actor=user.id)
        await self.moderation.safety_check(user, conversation.id, frozenset(conversation.member_ids), edited)
        return edited

    async def delete(self, user: User, message_id: str) -> MessageRemoved:
        """Wipe a message (sender, or an admin acting as moderator); broadcast `message:deleted`."""
        message = await self.deps.messages.get(message_id)
        if message is None or not (user.is_admin or
                                   await self.deps.conversations.get_for_member(message.conversation_id, user.id)):
            raise NotFound("No such message")
        if message.sender_id != user.id and not user.is_admin:
            raise Forbidden("Only the sender or an admin may delete a message")
        removed = MessageRemoved(message.conversation_id, message.id)
        if await self.deps.messages.delete(message.id) is not None:
            await self.deps.uploads.release([attachment.id for attachment in message.attachments], message.id)
            await self.deps.to_conversation(message.conversation_id, "message:deleted", removed)
        return removed

    async def react(self, user: User, message_id: str, emoji: str) -> Reactions:
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
        changed = Reactions(conversation.id, message.id, reactions)
        await self.deps.to_conversation(conversation.id, "message:reactions", changed, actor=user.id)
        return changed

    async def history(self, user: User, conversation_id: str, limit: int, before_seq: int | None = None,
                      after_seq: int | None = None) -> MessagePage:
        """Messages in seq order: after `afterSeq` (catch-up), before `beforeSeq`, or the latest.

        `lastSeq` may lag behind messages another process stored within the last second, so the
        newest page reads an open range upward and catch-up reads one message past its page.
        """
        conversation = await self.deps.conversation(user, conversation_id)
        if after_seq is not None:
            first = after_seq + 1
            items = await self.deps.messages.seq_range(conversation.id, first, first + limit)
            more = len(items) > limit or first + limit < conversation.last_seq
            items, more = _settled_prefix(items[:limit], first, more)
        elif before_seq is not None:
            last = before_seq - 1
            items = (await self.deps.messages.seq_range(conversation.id, max(1, last - limit + 1), last)
                     if last >= 1 else [])
            more = max(1, last - limit + 1) > 1
        else:
            first = max(1, conversation.last_seq - limit + 1)
            newest = await self.deps.messages.seq_range(conversation.id, first)
            items, more = newest[-limit:], len(newest) > limit or first > 1
        through = (items[0].seq if before_seq is not None else items[-1].seq) if items else None
        if not conversation.direct:  # in a group, nothing from or to someone in a block with the caller
            estranged = await self.deps.blocks.estranged(user.id)
            items = [message for message in items if message.sender_id not in estranged]
        return MessagePage(items, more, through)

    async def search(self, user: User, query: str, limit: int, conversation_id: str | None = None) -> Found:
        """Messages containing every query word, newest first, only from the caller's conversations."""
        terms = list(dict.fromkeys(words(query)))
        if not terms:
            raise InvalidPayload("The query has no words", {"query": ["Give at least one word."]})
        if conversation_id is not None:
            ids = [(await self.deps.conversation(user, conversation_id)).id]
        else:
            ids = await self.deps.conversations.ids_for_member(user.id)
        found = await self.deps.messages.search(terms[:16], ids, limit) if ids else []
        estranged = await self.deps.blocks.estranged(user.id)
        if estranged:
            found = [message for message in found if message.sender_id not in estranged
                     or await self._direct(message.conversation_id)]
        return Found(found)

    async def _direct(self, conversation_id: str) -> bool:
        membership = await self.deps.conversations.membership(conversation_id)
        return membership is not None and membership.direct


def _same_send(message: Message, conversation_id: str, text: str, attachment_ids: list[str],
               reply_to_id: str | None) -> None:
    """A repeated requestId must repeat the same send (its text as sent, unless edited or deleted since)."""
    same = (message.conversation_id == conversation_id and message.reply_to_id == reply_to_id
            and [attachment.id for attachment in message.attachments] == attachment_ids
            and (message.text == text or message.edited_at is not None or message.deleted))
    if not same:
        raise RequestIdReused("This requestId was used for a different message")
