"""The /chat namespace (CONTRACT §2): thin request methods over handlers.chat."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.chat.feature import ChatHandler
from realtime.base import BaseNamespace, request
from realtime.schemas import Pagination
from realtime.schemas.chat import ConversationRef, EditMessage, History, Marker, MessageRef, OpenConversation, \
    ReactMessage, ReportList, ReportMessage, ReportRef, Search, SendMessage, UserRef

Payload = dict[str, Any]
ADMIN = ("admin",)


class ChatNamespace(BaseNamespace):
    """Conversations, messages, receipts, typing, presence and moderation."""

    @property
    def chat(self) -> ChatHandler:
        """The chat handlers of this app."""
        return self.services.chat

    async def on_user_connected(self, sid: str, user: User) -> None:
        """Presence: maybe `online`."""
        await self.chat.presence.connected(sid, user)

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """End this user's typing here; presence: maybe `offline`."""
        await self.chat.typing.stop_all(user.id)
        await self.chat.presence.disconnected(sid, user)

    @request("conversation:open", OpenConversation, rate=(20, 1.0))
    async def open(self, sid: str, user: User, payload: Payload) -> Any:
        """The direct conversation with one user, or a new group."""
        return await self.chat.conversations.open(user, **payload)

    @request("conversation:list", Pagination)
    async def list(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's conversations, latest activity first."""
        return await self.chat.conversations.list(user, **payload)

    @request("conversation:join", ConversationRef)
    async def join(self, sid: str, user: User, payload: Payload) -> Any:
        """Receive the conversation's events on this socket."""
        return await self.chat.conversations.join(sid, user, **payload)

    @request("conversation:leave", ConversationRef)
    async def leave(self, sid: str, user: User, payload: Payload) -> Any:
        """Stop receiving the conversation's events on this socket."""
        return await self.chat.conversations.leave(sid, user, **payload)

    @request("message:send", SendMessage)  # RATE_LIMIT_BURST / RATE_LIMIT_PER_SECOND
    async def send(self, sid: str, user: User, payload: Payload) -> Any:
        """Send a message."""
        return await self.chat.messages.send(sid, user, **payload)

    @request("message:edit", EditMessage)
    async def edit(self, sid: str, user: User, payload: Payload) -> Any:
        """Edit one's own message within the edit window."""
        return await self.chat.messages.edit(user, **payload)

    @request("message:delete", MessageRef)
    async def delete(self, sid: str, user: User, payload: Payload) -> Any:
        """Delete a message (sender or admin)."""
        return await self.chat.messages.delete(user, **payload)

    @request("message:react", ReactMessage)
    async def react(self, sid: str, user: User, payload: Payload) -> Any:
        """Toggle a reaction."""
        return await self.chat.messages.react(user, **payload)

    @request("message:history", History)
    async def history(self, sid: str, user: User, payload: Payload) -> Any:
        """Messages by seq range (catch-up and scroll-back)."""
        return await self.chat.messages.history(user, **payload)

    @request("message:search", Search, rate=(10, 1.0))
    async def search(self, sid: str, user: User, payload: Payload) -> Any:
        """Search the caller's conversations."""
        return await self.chat.messages.search(user, **payload)

    @request("message:read", Marker)
    async def read(self, sid: str, user: User, payload: Payload) -> Any:
        """Move the read marker forward."""
        return await self.chat.conversations.mark(user, payload["conversation_id"], payload["seq"], read=True)

    @request("message:delivered", Marker)
    async def delivered(self, sid: str, user: User, payload: Payload) -> Any:
        """Move the delivered marker forward."""
        return await self.chat.conversations.mark(user, payload["conversation_id"], payload["seq"], read=False)

    @request("message:report", ReportMessage, rate=(10, 0.2))
    async def report(self, sid: str, user: User, payload: Payload) -> Any:
        """Report a message to the admins."""
        return await self.chat.moderation.report(user, **payload)

    @request("report:list", ReportList, roles=ADMIN)
    async def reports(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin review list of reported messages."""
        return await self.chat.moderation.list_reports(**payload)

    @request("report:resolve", ReportRef, roles=ADMIN)
    async def resolve(self, sid: str, user: User, payload: Payload) -> Any:
        """Close a report."""
        return await self.chat.moderation.resolve_report(user, **payload)

    @request("typing:start", ConversationRef, rate=(20, 2.0))
    async def typing_start(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller is typing."""
        return await self.chat.typing.start(user, **payload)

    @request("typing:stop", ConversationRef, rate=(20, 2.0))
    async def typing_stop(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller stopped typing."""
        return await self.chat.typing.stop(user, **payload)

    @request("user:block", UserRef)
    async def block(self, sid: str, user: User, payload: Payload) -> Any:
        """Block a user from direct conversations with the caller."""
        return await self.chat.moderation.block(user, **payload)

    @request("user:unblock", UserRef)
    async def unblock(self, sid: str, user: User, payload: Payload) -> Any:
        """Lift a block."""
        return await self.chat.moderation.unblock(user, **payload)
