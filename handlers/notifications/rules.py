"""Which domain events notify whom, and with what neutral words (never message text, notes or reasons)."""
from __future__ import annotations

import asyncio
from datetime import datetime

from clock import iso
from handlers.events import BookingChanged, ConversationRead, EventBus, MessageCreated, SessionReminderDue
from handlers.notifications import billing_rules, meeting_rules, worksheets_rules
from handlers.notifications.handler import NotificationHandler

BOOKING_TITLES = {
    "requested": "Session requested",
    "confirmed": "Session confirmed",
    "cancelled": "Session cancelled",
    "rescheduled": "Session rescheduled",
    "declined": "Session declined",
}
MESSAGE_BODY = "Open careline to read it."


def message_collapse_key(conversation_id: str) -> str:
    """At most one unread message notification per conversation and member carries this key."""
    return f"message:{conversation_id}"


def session_time(start: datetime) -> str:
    """`Tue 24 Nov 2026, 10:00 UTC`: the only detail a booking notification carries."""
    return start.strftime("%a %d %b %Y, %H:%M UTC")


class NotificationRules:
    """Domain event subscribers that turn what happened into notifications."""

    def __init__(self, notifications: NotificationHandler) -> None:
        self._notifications = notifications
        self._reads: dict[tuple[str, str], int | None] = {}
        self._reading: asyncio.Future[None] | None = None

    async def message_created(self, event: MessageCreated) -> None:
        """Every member without a live socket in the conversation hears of it (bursts collapse)."""
        message = event.message
        name = event.sender.name or "someone"
        data = {"conversationId": message.conversation_id, "messageId": message.id, "seq": message.seq}
        for member in event.absent_member_ids:
            if member == message.sender_id:
                continue
            await self._notifications.notify(member, category="message", title=f"New message from {name}",
                                             body=MESSAGE_BODY, data=data,
                                             collapse_key=message_collapse_key(message.conversation_id))

    async def conversation_read(self, event: ConversationRead) -> None:
        """Reading the conversation reads its pending message notification.

        Reads arriving together (every send reads the sender's own conversation) are looked up
        with one query, and only those with a pending notification are written.
        """
        key = (event.user_id, message_collapse_key(event.conversation_id))
        known = self._reads.get(key, 0)
        self._reads[key] = None if known is None else max(known, event.seq)
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_together())
        await asyncio.shield(self._reading)

    async def _read_together(self) -> None:
        await asyncio.sleep(0)  # let this tick's reads join the batch
        reads, self._reads, self._reading = self._reads, {}, None
        await self._notifications.read_collapsed_many(reads)

    async def booking_changed(self, event: BookingChanged) -> None:
        """The other party hears of it; for a system action (no actor), the client.

        Changes without a title here (completed, payment) are told by their own feature's rules, or not at all.
        """
        title = BOOKING_TITLES.get(event.change)
        if title is None:
            return
        booking, actor = event.booking, event.actor_id
        parties = {booking.client_id, booking.therapist_id}
        recipients = [booking.client_id] if actor is None else sorted(parties - {actor})
        start = iso(booking.start)
        for user_id in recipients:
            await self._notifications.notify(
                user_id, category="booking", title=title, body=session_time(booking.start),
                data={"bookingId": booking.id, "start": start},
                dedupe_key=f"booking.{event.change}:{booking.id}:{start}:{booking.status}")

    async def session_reminder(self, event: SessionReminderDue) -> None:
        """Both parties hear that their session starts soon (once per reminder, however often delivered)."""
        booking = event.booking
        for user_id in (booking.client_id, booking.therapist_id):
            await self._notifications.notify(user_id, category="booking", title="Session reminder",
                                             body=f"Your session starts in {event.ahead}",
                                             data={"bookingId": booking.id}, dedupe_key=f"reminder:{event.reminder_id}")


def subscribe(bus: EventBus, notifications: NotificationHandler) -> NotificationRules:
    """Wire the rules to the bus."""
    rules = NotificationRules(notifications)
    bus.subscribe(MessageCreated, rules.message_created)
    bus.subscribe(ConversationRead, rules.conversation_read)
    bus.subscribe(BookingChanged, rules.booking_changed)
    bus.subscribe(SessionReminderDue, rules.session_reminder)
    meeting_rules.subscribe(bus, notifications)
    billing_rules.subscribe(bus, notifications)
    worksheets_rules.subscribe(bus, notifications)
    return rules
