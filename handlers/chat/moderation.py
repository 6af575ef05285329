"""Blocking, reports and the admin review list, the blocklist, and crisis-phrase safety alerts."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.chat.access import NAMESPACE, ChatDeps
from handlers.chat.content_rules import ContentRules
from errors import InvalidPayload, NotFound, PreconditionFailed
from handlers.publisher import role_room
from stores.chat.messages import Message


class ModerationHandler:
    """Moderation requests of /chat and the content checks of sending."""

    def __init__(self, deps: ChatDeps, rules: ContentRules) -> None:
        self.deps = deps
        self.rules = rules

    def check_text(self, text: str) -> None:
        """Refuse text matching the configured blocklist."""
        if self.rules.blocked(text):
            raise PreconditionFailed("The message contains blocked content")

    async def safety_check(self, user: User, conversation_id: str, member_ids: frozenset[str],
                           message: Message) -> bool:
        """On a crisis phrase, alert the conversation's therapists and every admin; never blocks the message."""
        if not self.rules.crisis(message.text):
            return False
        alert = {"conversationId": conversation_id, "messageId": message.id, "userId": user.id}
        staff = await self.deps.users.get_many([m for m in member_ids if m != user.id])
        for member in staff.values():
            if member.role == "therapist":
                await self.deps.publisher.to_user(NAMESPACE, member.id, "safety:alert", alert)
        # Admins (members or not) are all in role:admin on /chat, so they get it exactly once.
        await self.deps.publisher.to_room(NAMESPACE, role_room("admin"), "safety:alert", alert)
        await self.deps.bus.publish("safety.alert", conversation_id=conversation_id, message_id=message.id,
                                    user_id=user.id, staff_ids=[m.id for m in staff.values()
                                                                if m.role in ("therapist", "admin")])
        return True

    async def block(self, user: User, user_id: str) -> dict[str, Any]:
        """Stop `user_id` from opening or sending to a direct conversation with the caller."""
        if user_id == user.id:
            raise InvalidPayload("You cannot block yourself", {"userId": ["Must be another user."]})
        await self.deps.blocks.block(user.id, user_id)
        return {}

    async def unblock(self, user: User, user_id: str) -> dict[str, Any]:
        """Lift a block (no error when there was none)."""
        await self.deps.blocks.unblock(user.id, user_id)
        return {}

    async def report(self, user: User, message_id: str, reason: str) -> dict[str, Any]:
        """Store a report of a message the caller can see and put it on the admin review list."""
        message, conversation = await self.deps.message(user, message_id)
        report, created = await self.deps.reports.create(message.id, conversation.id, user.id, reason)
        if created:
            await self.deps.publisher.to_room(NAMESPACE, role_room("admin"), "report:created", report.to_dict())
        return {"reportId": report.id}

    async def list_reports(self, limit: int, cursor: str | None, status: str) -> dict[str, Any]:
        """Admin review list: reports newest first, each with the reported message."""
        page = await self.deps.reports.page(status, limit + 1, cursor)
        page, more = page[:limit], len(page) > limit
        messages = await self.deps.messages.get_many([report.message_id for report in page])
        items = []
        for report in page:
            message = messages.get(report.message_id)
            items.append({**report.to_dict(), "message": message.to_dict() if message else None})
        return {"items": items, "nextCursor": page[-1].id if more else None}

    async def resolve_report(self, admin: User, report_id: str) -> dict[str, Any]:
        """Close a report (admin)."""
        report = await self.deps.reports.resolve(report_id, admin.id)
        if report is None:
            raise NotFound("No such report")
        return report.to_dict()
