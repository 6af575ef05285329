"""Blocking, reports and the admin review list, the blocklist, and crisis-phrase safety alerts."""
from __future__ import annotations

from errors import InvalidPayload, NotFound, PreconditionFailed
from handlers.auth import User
from handlers.chat.access import NAMESPACE, ChatDeps
from handlers.chat.content_rules import ContentRules
from handlers.chat.deltas import ReportReview, SafetyAlert
from handlers.events import SafetyAlertRaised
from handlers.page import Page
from handlers.publisher import role_room
from stores.chat.messages import Message
from stores.chat.moderation import Report


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
        alert = SafetyAlert(conversation_id, message.id, user.id)
        staff = await self.deps.users.get_many([m for m in member_ids if m != user.id])
        for member in staff.values():
            if member.role == "therapist":
                await self.deps.publisher.to_user(NAMESPACE, member.id, "safety:alert", alert)
        # Admins (members or not) are all in role:admin on /chat, so they get it exactly once.
        await self.deps.publisher.to_room(NAMESPACE, role_room("admin"), "safety:alert", alert)
        staff_ids = tuple(m.id for m in staff.values() if m.role in ("therapist", "admin"))
        await self.deps.bus.publish(SafetyAlertRaised(conversation_id, message.id, user.id, staff_ids))
        return True

    async def block(self, user: User, user_id: str) -> None:
        """Stop `user_id` from opening or sending to a direct conversation with the caller."""
        if user_id == user.id:
            raise InvalidPayload("You cannot block yourself", {"userId": ["Must be another user."]})
        await self.deps.blocks.block(user.id, user_id)

    async def unblock(self, user: User, user_id: str) -> None:
        """Lift a block (no error when there was none)."""
        await self.deps.blocks.unblock(user.id, user_id)

    async def report(self, user: User, message_id: str, reason: str) -> Report:
        """Store a report of a message the caller can see and put it on the admin review list."""
        message, conversation = await self.deps.message(user, message_id)
        report, created = await self.deps.reports.create(message.id, conversation.id, user.id, reason)
        if created:
            await self.deps.publisher.to_room(NAMESPACE, role_room("admin"), "report:created", report)
        return report

    async def list_reports(self, limit: int, cursor: str | None, status: str) -> Page[ReportReview]:
        """Admin review list: reports newest first, each with the reported message."""
        page = await self.deps.reports.page(status, limit + 1, cursor)
        page, more = page[:limit], len(page) > limit
        messages = await self.deps.messages.get_many([report.message_id for report in page])
        items = [ReportReview(report, messages.get(report.message_id)) for report in page]
        return Page(items, page[-1].id if more else None)

    async def resolve_report(self, admin: User, report_id: str) -> Report:
        """Close a report (admin)."""
        report = await self.deps.reports.resolve(report_id, admin.id)
        if report is None:
            raise NotFound("No such report")
        return report
