"""Conversations: open (direct or group), list with unread counts, join/leave, receipts."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from datetime import datetime, timezone

from clock import utcnow
from errors import Forbidden, InvalidPayload, NotFound
from handlers.auth import User
from handlers.chat.access import NAMESPACE, ChatDeps, conv_room
from handlers.chat.deltas import ConversationSummary, JoinedConversation, PresenceChange, Receipt
from handlers.events import ConversationRead
from handlers.page import Page
from handlers.publisher import room_group, user_room
from stores.chat.conversations import Conversation, Markers

STAFF = ("therapist", "admin")


def direct_kind(role_a: str, role_b: str) -> str:
    """The kind of a two-member conversation from its members' roles (admins count as staff)."""
    staff = sum(role in STAFF for role in (role_a, role_b))
    return ("client_client", "client_therapist", "therapist_therapist")[staff]


def encode_cursor(conversation: Conversation) -> str:
    """An opaque cursor after this conversation."""
    millis = int(conversation.last_activity_at.timestamp() * 1000)
    return base64.urlsafe_b64encode(f"{millis}:{conversation.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (lastActivityAt, id) a cursor stands for; InvalidPayload when it is not one of ours."""
    try:
        millis, _, conversation_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if not conversation_id:
            raise ValueError(cursor)
        return datetime.fromtimestamp(int(millis) / 1000, timezone.utc), conversation_id
    except ValueError:
        raise InvalidPayload("Invalid cursor", {"cursor": ["Not a valid cursor."]}) from None


class ConversationHandler:
    """Conversation requests of /chat."""

    def __init__(self, deps: ChatDeps) -> None:
        self.deps = deps

    async def open_conversation(self, user: User, member_ids: list[str], title: str | None = None,
                   request_id: str | None = None) -> Conversation:
        """The direct conversation with one other user (existing or new), or a new group."""
        others = [member for member in dict.fromkeys(member_ids) if member != user.id]
        if not others:
            raise InvalidPayload("Name at least one other member", {"memberIds": ["Name another member."]})
        most = self.deps.config.chat_group_max_members
        if len(others) > most:
            raise InvalidPayload("Too many members", {"memberIds": [f"At most {most} other members."]})
        known = await self.deps.users.get_many(others)
        if len(known) != len(others):
            raise NotFound("No such user")
        if len(others) > 1:
            if user.role not in STAFF:
                raise Forbidden("Only therapists and admins create group conversations")
            if await self.deps.blocks.blockers_of(user.id) & set(others):
                raise Forbidden("You cannot start a conversation with this user")
            conversation, created = await self.deps.conversations.create_group(
                [user.id, *others], title, user.id, request_id)
        else:
            conversation, created = await self._open_direct(user, known[others[0]].id, known[others[0]].role, title)
            if not created:
                await self.engaged(conversation.id, user, conversation.member_ids)
        if created:
            for member in conversation.member_ids:
                await self.deps.publisher.to_user(NAMESPACE, member, "conversation:created", conversation)
        return self.deps.current(conversation)

    async def _open_direct(self, user: User, other_id: str, other_role: str,
                           title: str | None) -> tuple[Conversation, bool]:
        kind = direct_kind(user.role, other_role)
        if kind == "client_client" and not self.deps.config.chat_client_to_client:
            raise Forbidden("Conversations between clients are switched off")
        if await self.deps.blocks.is_blocked(other_id, user.id):
            raise Forbidden("You cannot message this user")
        return await self.deps.conversations.open_direct(kind, user.id, other_id, title)

    async def page(self, user: User, limit: int, cursor: str | None) -> Page[ConversationSummary]:
        """The caller's conversations, latest activity first, with unreadCount and lastMessage."""
        after = decode_cursor(cursor) if cursor else None
        page = await self.deps.conversations.page_for_member(user.id, limit + 1, after, self.deps.activity.known)
        page = [self.deps.current(c) for c in page]
        page, more = page[:limit], len(page) > limit
        markers = await self.deps.conversations.markers_of([c.id for c in page], user.id)
        items = await asyncio.gather(*(self._summary(user, c, markers.get(c.id, Markers())) for c in page))
        return Page(list(items), encode_cursor(page[-1]) if more else None)

    async def _summary(self, user: User, conversation: Conversation, markers: Markers) -> ConversationSummary:
        unread, read_seq = 0, conversation.read_seq_of(user.id, markers)
        if conversation.last_seq > read_seq:
            unread = await self.deps.messages.count_unread(conversation.id, read_seq, user.id)
        last = None
        if conversation.last_seq:
            last = await self.deps.messages.latest(conversation.id, conversation.last_seq)
        return ConversationSummary(**vars(conversation), unread_count=unread, last_message=last)

    async def join(self, sid: str, user: User, conversation_id: str) -> JoinedConversation:
        """Subscribe the socket to the conversation's events; returns who is online."""
        conversation = await self.deps.conversation(user, conversation_id)
        await self.deps.publisher.join(NAMESPACE, sid, conv_room(conversation.id), user.id)
        if conversation.direct:
            await self.engaged(conversation.id, user, conversation.member_ids)
        estranged = await self.deps.blocks.estranged(user.id)
        shown = [member for member in conversation.member_ids
                 if member == user.id or (conversation.shows_presence_of(member) and member not in estranged)]
        groups = {room_group(NAMESPACE, user_room(member)): member for member in shown}
        live = await self.deps.sockets.any_live(groups)
        presence = {member: "online" if live[group] else "offline" for group, member in groups.items()}
        return JoinedConversation(conversation, presence)

    async def engaged(self, conversation_id: str, user: User, member_ids: Iterable[str]) -> None:
        """The user opened, joined or wrote in a direct conversation: from the first time on, the other member
        sees their presence (they are online now)."""
        if not await self.deps.conversations.engage(conversation_id, user.id):
            return
        estranged = await self.deps.blocks.estranged(user.id)
        online = PresenceChange(user.id, "online", utcnow())
        for member in member_ids:
            if member != user.id and member not in estranged:
                await self.deps.publisher.to_user(NAMESPACE, member, "presence:changed", online)

    async def leave(self, sid: str, user: User, conversation_id: str) -> None:
        """Stop the socket's events of a conversation (membership unchanged)."""
        conversation = await self.deps.conversation(user, conversation_id)
        await self.deps.publisher.leave(NAMESPACE, sid, conv_room(conversation.id), user.id)

    async def mark(self, user: User, conversation_id: str, seq: int, read: bool) -> None:
        """Move the caller's delivered (and, for reads, read) marker forward; broadcast when it moved."""
        conversation = await self.deps.conversation(user, conversation_id)
        if seq > conversation.last_seq:  # lastSeq may lag another process's newest messages by a moment
            seq = min(seq, await self.deps.messages.max_seq(conversation.id, conversation.last_seq))
        await self._move(conversation.id, user.id, seq, read=read)

    async def _move(self, conversation_id: str, user_id: str, seq: int, *, read: bool) -> None:
        """Move markers; announce `receipt:updated` and `conversation.read` when they moved."""
        before, after = await self.deps.conversations.move_markers(conversation_id, user_id, seq,
                                                                   seq if read else None)
        if after == before:
            return
        await self.deps.to_conversation(conversation_id, "receipt:updated",
                                        Receipt(conversation_id, user_id, after.delivered_seq, after.read_seq),
                                        actor=user_id)
        if after.read_seq > before.read_seq:
            await self.deps.bus.publish(ConversationRead(conversation_id, user_id, after.read_seq))
