"""Which domain events notify whom, and with what neutral words (never message text, notes or reasons)."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from handlers.events import DomainEvent, EventBus
from handlers.notifications.handler import NotificationHandler
from clock import iso, parse_iso

BOOKING_TITLES = {
    "booking.requested": "Session requested",
    "booking.confirmed": "Session confirmed",
    "booking.cancelled": "Session cancelled",
    "booking.rescheduled": "Session rescheduled",
    "booking.declined": "Session declined",
}
MESSAGE_BODY = "Open careline to read it."


def message_collapse_key(conversation_id: str) -> str:
    """At most one unread message notification per conversation and member carries this key."""
    return f"message:{conversation_id}"


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_iso(str(value))


def session_time(start: Any) -> str:
    """`Tue 24 Nov 2026, 10:00 UTC`: the only detail a booking notification carries."""
    return _time(start).strftime("%a %d %b %Y, %H:%M UTC")


class NotificationRules:
    """Domain event subscribers that turn what happened into notifications."""

    def __init__(self, notifications: NotificationHandler) -> None:
        self._notifications = notifications
        self._reads: dict[tuple[str, str], int | None] = {}
        self._reading: asyncio.Future[None] | None = None

    async def message_created(self, event: DomainEvent) -> None:
        """Every member without a live socket in the conversation hears of it (bursts collapse)."""
        message, conversation_id = event.payload["message"], event.payload["conversation_id"]
        name = (event.payload.get("sender") or {}).get("name") or "someone"
        data = {"conversationId": conversation_id, "messageId": message["id"], "seq": message.get("seq")}
        for member in event.payload.get("absent_member_ids") or ():
            if member == message.get("senderId"):
                continue
            await self._notifications.notify(member, category="message", title=f"New message from {name}",
                                             body=MESSAGE_BODY, data=data,
                                             collapse_key=message_collapse_key(conversation_id))

    async def conversation_read(self, event: DomainEvent) -> None:
        """Reading the conversation reads its pending message notification.

        Reads arriving together (every send reads the sender's own conversation) are looked up
        with one query, and only those with a pending notification are written.
        """
        payload, seq = event.payload, event.payload.get("seq")
        key = (payload["user_id"], message_collapse_key(payload["conversation_id"]))
        up_to = seq if isinstance(seq, int) else None
        known = self._reads.get(key, 0)
        self._reads[key] = None if up_to is None or known is None else max(known, up_to)
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_together())
        await asyncio.shield(self._reading)

    async def _read_together(self) -> None:
        await asyncio.sleep(0)  # let this tick's reads join the batch
        reads, self._reads, self._reading = self._reads, {}, None
        await self._notifications.read_collapsed_many(reads)

    async def booking_changed(self, event: DomainEvent) -> None:
        """The other party hears of it; for a system action (no actor), the client."""
        booking, actor = event.payload["booking"], event.payload.get("actor_id")
        parties = {booking["clientId"], booking["therapistId"]}
        recipients = [booking["clientId"]] if actor is None else sorted(parties - {actor})
        start = iso(_time(booking["start"]))
        for user_id in recipients:
            await self._notifications.notify(
                user_id, category="booking", title=BOOKING_TITLES[event.name], body=session_time(booking["start"]),
                data={"bookingId": booking["id"], "start": start},
                dedupe_key=f"{event.name}:{booking['id']}:{start}:{booking.get('status')}")


def subscribe(bus: EventBus, notifications: NotificationHandler) -> NotificationRules:
    """Wire the rules to the bus."""
    rules = NotificationRules(notifications)
    bus.subscribe("message.created", rules.message_created)
    bus.subscribe("conversation.read", rules.conversation_read)
    for name in BOOKING_TITLES:
        bus.subscribe(name, rules.booking_changed)
    return rules
