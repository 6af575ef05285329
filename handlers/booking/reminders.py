"""Session reminders 24 h and 1 h before a confirmed booking: durable, leased, sent exactly once."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from clock import Clock
from handlers.events import EventBus, SessionReminderDue
from handlers.jobs import QueueCounters
from stores.booking.bookings import BookingRecord, BookingStore
from stores.booking.reminders import Reminder, ReminderStore

log = logging.getLogger("careline.booking")

KINDS = {"24h": (timedelta(hours=24), "24 hours"), "1h": (timedelta(hours=1), "1 hour")}
BATCH = 200  # reminders one tick sends at most, so a backlog cannot starve the other jobs


class ReminderScheduler:
    """Stores reminders for confirmed bookings and delivers the due ones as `SessionReminderDue` events.

    Each reminder is claimed with a lease (a compare-and-set on the previous lease), so several loops never
    take the same one; a crashed loop's claim becomes claimable again when its lease ends, and the reminder id
    the event carries makes that second attempt harmless if the first got as far as notifying.
    """

    def __init__(self, store: ReminderStore, bookings: BookingStore, bus: EventBus, lease: timedelta,
                 clock: Clock) -> None:
        self.store = store
        self.bookings = bookings
        self.bus = bus
        self.lease = lease
        self.clock = clock
        self.counters = QueueCounters()  # reminders done (job monitoring)

    async def schedule(self, booking: BookingRecord) -> None:
        """(Re)place the reminders of a confirmed booking, skipping those already past."""
        now = self.clock()
        due = {kind: booking.start - ahead for kind, (ahead, _body) in KINDS.items() if booking.start - ahead > now}
        await self.store.schedule(booking.id, booking.start, due)

    async def remove(self, booking_id: str) -> None:
        """Forget the unsent reminders of a booking that ended."""
        await self.store.remove(booking_id)

    async def tick(self) -> int:
        """Claim and send due reminders until none is left (or a batch is done); returns how many were sent."""
        sent = 0
        for _ in range(BATCH):
            reminder = await self.store.claim(self.clock(), self.lease)
            if reminder is None:
                break
            sent += await self.deliver(reminder)
        return sent

    async def deliver(self, reminder: Reminder) -> int:
        """Announce one claimed reminder (subscribers notify both parties) unless it no longer applies; mark it done."""
        booking = await self.bookings.get(reminder.booking_id)
        now = self.clock()
        if booking is None or not _applies(reminder, booking, now):
            await self.store.finish(reminder, now, "skipped")
            self.counters.succeeded()
            return 0
        await self.bus.deliver(SessionReminderDue(booking, reminder.id, KINDS[reminder.kind][1], reminder.due_at))
        if not await self.store.finish(reminder, now, "sent"):
            log.warning("reminder lease lost while sending", extra={"reminder": reminder.id})
        self.counters.succeeded()
        return 1


def _applies(reminder: Reminder, booking: BookingRecord, now: datetime) -> bool:
    """Still confirmed at the same time, not started, and not overtaken by a later (closer) reminder."""
    if booking.status != "confirmed" or booking.start != reminder.session_start or now >= booking.start:
        return False
    closer = [ahead for ahead, _body in KINDS.values() if ahead < KINDS[reminder.kind][0]]
    return not any(now >= booking.start - ahead for ahead in closer)
