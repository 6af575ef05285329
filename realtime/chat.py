"""The /chat namespace (CONTRACT §2): thin request methods over the chat feature's handlers."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.chat.feature import ChatFeature
from realtime.base import BaseNamespace, request
from realtime.schemas.chat import (
    ConversationOut,
    ConversationPageOut,
    ConversationRef,
    DeletedOut,
    EditMessage,
    FoundOut,
    History,
    JoinedOut,
    Marker,
    MessageOut,
    MessagePageOut,
    MessageRef,
    MessageRemovedOut,
    OpenConversation,
    PresenceOut,
    ReactedOut,
    ReactionsOut,
    ReactMessage,
    ReceiptOut,
    ReportCreatedOut,
    ReportList,
    ReportMessage,
    ReportOut,
    ReportPageOut,
    ReportRef,
    SafetyAlertOut,
    Search,
    SendMessage,
    SentMessageOut,
    TypingOut,
    UploadLinkOut,
    UploadRef,
    UserRef,
)
from realtime.schemas.common import Pagination

Payload = dict[str, Any]
ADMIN = ("admin",)


class ChatNamespace(BaseNamespace[ChatFeature]):
    """Conversations, messages, receipts, typing, presence and moderation."""

    path = "/chat"
    emits = {"message:created": MessageOut, "message:updated": MessageOut, "message:deleted": MessageRemovedOut,
             "message:reactions": ReactionsOut, "receipt:updated": ReceiptOut, "typing": TypingOut,
             "presence:changed": PresenceOut, "conversation:created": ConversationOut,
             "safety:alert": SafetyAlertOut, "report:created": ReportOut}


    async def on_user_connected(self, sid: str, user: User) -> None:
        """Presence: maybe `online`."""
        await self.handler.presence.connected(sid, user)

    tracks_user_room = True  # presence registers the socket (first one?) and unregisters it (last one?)

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """End this user's typing here; presence: maybe `offline`."""
        await self.handler.typing.stop_all(user.id)
        await self.handler.presence.disconnected(sid, user)

    @request("conversation:open", OpenConversation, ack=ConversationOut, rate=(20, 1.0))
    async def open_conversation(self, sid: str, user: User, payload: Payload) -> Any:
        """The direct conversation with one user, or a new group."""
        return await self.handler.conversations.open_conversation(user, **payload)

    @request("conversation:list", Pagination, ack=ConversationPageOut)
    async def list_conversations(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's conversations, latest activity first."""
        return await self.handler.conversations.page(user, **payload)

    @request("conversation:join", ConversationRef, ack=JoinedOut)
    async def join_conversation(self, sid: str, user: User, payload: Payload) -> Any:
        """Receive the conversation's events on this socket."""
        return await self.handler.conversations.join(sid, user, **payload)

    @request("conversation:leave", ConversationRef)
    async def leave_conversation(self, sid: str, user: User, payload: Payload) -> Any:
        """Stop receiving the conversation's events on this socket."""
        return await self.handler.conversations.leave(sid, user, **payload)

    # rate: RATE_LIMIT_BURST / RATE_LIMIT_PER_SECOND; a repeated requestId is checked by the handler (hot path)
    @request("message:send", SendMessage, ack=SentMessageOut, idempotency="handler")
    async def send_message(self, sid: str, user: User, payload: Payload) -> Any:
        """Send a message."""
        return await self.handler.messages.send(sid, user, **payload)

    @request("message:edit", EditMessage, ack=MessageOut)
    async def edit_message(self, sid: str, user: User, payload: Payload) -> Any:
        """Edit one's own message within the edit window."""
        return await self.handler.messages.edit(user, **payload)

    @request("message:delete", MessageRef, ack=DeletedOut)
    async def delete_message(self, sid: str, user: User, payload: Payload) -> Any:
        """Delete a message (sender or admin)."""
        return await self.handler.messages.delete(user, **payload)

    @request("message:react", ReactMessage, ack=ReactedOut)
    async def react(self, sid: str, user: User, payload: Payload) -> Any:
        """Toggle a reaction."""
        return await self.handler.messages.react(user, **payload)

    @request("message:history", History, ack=MessagePageOut)
    async def history(self, sid: str, user: User, payload: Payload) -> Any:
        """Messages by seq range (catch-up and scroll-back)."""
        return await self.handler.messages.history(user, **payload)

    @request("message:search", Search, ack=FoundOut, rate=(10, 1.0))
    async def search(self, sid: str, user: User, payload: Payload) -> Any:
        """Search the caller's conversations."""
        return await self.handler.messages.search(user, **payload)

    @request("message:read", Marker)
    async def read(self, sid: str, user: User, payload: Payload) -> Any:
        """Move the read marker forward."""
        return await self.handler.conversations.mark(user, payload["conversation_id"], payload["seq"], read=True)

    @request("message:delivered", Marker)
    async def delivered(self, sid: str, user: User, payload: Payload) -> Any:
        """Move the delivered marker forward."""
        return await self.handler.conversations.mark(user, payload["conversation_id"], payload["seq"], read=False)

    @request("message:report", ReportMessage, ack=ReportCreatedOut, rate=(10, 0.2), idempotency="replay")
    async def report(self, sid: str, user: User, payload: Payload) -> Any:
        """Report a message to the admins."""
        payload.pop("request_id")  # checked by the shared wrapper (the first ack is replayed)
        report = await self.handler.moderation.report(user, **payload)
        return {"report_id": report.id}

    @request("upload:link", UploadRef, ack=UploadLinkOut, rate=(60, 2.0))
    async def upload_link(self, sid: str, user: User, payload: Payload) -> Any:
        """A short-lived download link for one file, for `<img src>` without a token in the URL."""
        return await self.handler.uploads.link(user, payload["upload_id"])

    @request("report:list", ReportList, ack=ReportPageOut, roles=ADMIN)
    async def reports(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin review list of reported messages."""
        return await self.handler.moderation.list_reports(**payload)

    @request("report:resolve", ReportRef, ack=ReportOut, roles=ADMIN)
    async def resolve(self, sid: str, user: User, payload: Payload) -> Any:
        """Close a report."""
        return await self.handler.moderation.resolve_report(user, **payload)

    @request("typing:start", ConversationRef, rate=(20, 2.0))
    async def typing_start(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller is typing."""
        return await self.handler.typing.start(user, **payload)

    @request("typing:stop", ConversationRef, rate=(20, 2.0))
    async def typing_stop(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller stopped typing."""
        return await self.handler.typing.stop(user, **payload)

    @request("user:block", UserRef)
    async def block(self, sid: str, user: User, payload: Payload) -> Any:
        """Block a user from direct conversations with the caller."""
        return await self.handler.moderation.block(user, **payload)

    @request("user:unblock", UserRef)
    async def unblock(self, sid: str, user: User, payload: Payload) -> Any:
        """Lift a block."""
        return await self.handler.moderation.unblock(user, **payload)
