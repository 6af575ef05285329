"""Worksheet notifications: neutral words only (never a title, an answer or a score)."""
from __future__ import annotations

from handlers.events import AssignmentChanged, AssignmentReminderDue, EventBus, WorksheetSafetyFlagged
from handlers.notifications.handler import NotificationHandler

OPEN_IT = "Open careline to see it."
CHANGES = {  # change -> (who hears of it, title)
    "assigned": ("client", "New worksheet"),
    "submitted": ("therapist", "Worksheet submitted"),
    "clarification": ("therapist", "Question about a worksheet"),
    "feedback": ("client", "Feedback on your worksheet"),
}
REMINDERS = {"due_soon": "Worksheet due soon", "overdue": "Worksheet overdue"}


class WorksheetRules:
    """Domain event subscribers for worksheets."""

    def __init__(self, notifications: NotificationHandler) -> None:
        self._notifications = notifications

    async def assignment_changed(self, event: AssignmentChanged) -> None:
        """The other party hears of an assignment, a submission, a question or feedback."""
        side, title = CHANGES[event.change]
        assignment = event.assignment
        user_id = assignment.client_id if side == "client" else assignment.therapist_id
        await self._notifications.notify(
            user_id, category="worksheet", title=title, body=OPEN_IT, data={"assignmentId": assignment.id},
            dedupe_key=None if event.change in ("feedback", "clarification")
            else f"worksheet.{event.change}:{assignment.id}")

    async def reminder_due(self, event: AssignmentReminderDue) -> None:
        """The client hears that a worksheet is due soon, or overdue (once per reminder)."""
        await self._notifications.notify(event.assignment.client_id, category="worksheet",
                                         title=REMINDERS[event.kind], body=OPEN_IT,
                                         data={"assignmentId": event.assignment.id},
                                         dedupe_key=f"worksheet.reminder:{event.reminder_id}")

    async def safety_flagged(self, event: WorksheetSafetyFlagged) -> None:
        """The therapist hears at once, whatever their quiet hours or preferences (critical)."""
        await self._notifications.notify(event.assignment.therapist_id, category="worksheet",
                                         title="A submitted worksheet needs your attention",
                                         body="Please review it as soon as you can.",
                                         data={"assignmentId": event.assignment.id}, critical=True,
                                         dedupe_key=f"worksheet.safety:{event.assignment.id}")


def subscribe(bus: EventBus, notifications: NotificationHandler) -> WorksheetRules:
    """Wire the worksheet rules to the bus."""
    rules = WorksheetRules(notifications)
    bus.subscribe(AssignmentChanged, rules.assignment_changed)
    bus.subscribe(AssignmentReminderDue, rules.reminder_due)
    bus.subscribe(WorksheetSafetyFlagged, rules.safety_flagged)
    return rules
