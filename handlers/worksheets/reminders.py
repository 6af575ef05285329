"""Due-soon (24 h before) and overdue reminders of assignments: durable, leased, announced exactly once."""
from __future__ import annotations

from datetime import timedelta

from clock import Clock
from handlers.events import AssignmentReminderDue, EventBus
from handlers.jobs import QueueCounters
from stores.worksheets.assignments import AssignmentStore
from stores.worksheets.reminders import AssignmentReminder, AssignmentReminderStore

BATCH = 200  # reminders one tick sends at most


class AssignmentReminders:
    """Claims due reminders under a lease and delivers them as `AssignmentReminderDue` (the notification's
    dedupe key is the reminder id, so a retried delivery after a lost lease notifies nobody twice)."""

    def __init__(self, store: AssignmentReminderStore, assignments: AssignmentStore, bus: EventBus,
                 lease: timedelta, clock: Clock) -> None:
        self.store = store
        self.assignments = assignments
        self.bus = bus
        self.lease = lease
        self.clock = clock
        self.counters = QueueCounters()  # reminders done (job monitoring)

    async def tick(self) -> int:
        """Send the due reminders (at most a batch); returns how many were sent."""
        sent = 0
        for _ in range(BATCH):
            reminder = await self.store.claim(self.clock(), self.lease)
            if reminder is None:
                break
            sent += await self.deliver(reminder)
            self.counters.succeeded()
        return sent

    async def deliver(self, reminder: AssignmentReminder) -> int:
        """Announce one claimed reminder unless the assignment was submitted, is gone, or (due soon) is already
        overdue; mark it done."""
        assignment = await self.assignments.get(reminder.assignment_id)
        now = self.clock()
        overtaken = reminder.kind == "due_soon" and assignment is not None and assignment.due_at is not None \
            and now >= assignment.due_at  # the overdue reminder says it instead
        if assignment is None or not assignment.editable or overtaken:
            await self.store.finish(reminder, now, "skipped")
            return 0
        await self.bus.deliver(AssignmentReminderDue(assignment, reminder.id, reminder.kind))
        await self.store.finish(reminder, now, "sent")
        return 1
