"""Typed domain events and the bus that carries them: handlers publish what happened, other features react.

Events are frozen dataclasses; subscribers register for an event class and receive instances of it,
so a renamed field is a type error, not a silently missed notification. `publish` runs subscribers in
background tasks (a request is never slowed or failed by a reaction to it); `deliver` awaits them and
lets a failure propagate, for jobs that must retry until a reaction has happened (reminders).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from handlers.auth import User
from stores.booking.bookings import BookingRecord
from stores.chat.messages import Message
from stores.worksheets.assignments import Assignment

log = logging.getLogger("careline.events")

E = TypeVar("E")
Subscriber = Callable[[E], Awaitable[None]]
Turn = Callable[[], AbstractAsyncContextManager[None]]

BookingChange = Literal["requested", "confirmed", "declined", "cancelled", "rescheduled", "completed", "no_show",
                        "payment"]
AssignmentChange = Literal["assigned", "submitted", "feedback", "clarification"]


@dataclass(frozen=True)
class MessageCreated:
    """A new chat message; `absent_member_ids` had no socket in the conversation when it was delivered."""

    message: Message
    sender: User
    absent_member_ids: tuple[str, ...]


@dataclass(frozen=True)
class ConversationRead:
    """A member's read position in a conversation moved forward to `seq`."""

    conversation_id: str
    user_id: str
    seq: int


@dataclass(frozen=True)
class SafetyAlertRaised:
    """A message matched a crisis phrase; the conversation's staff and the admins were alerted."""

    conversation_id: str
    message_id: str
    user_id: str
    staff_ids: tuple[str, ...]


@dataclass(frozen=True)
class BookingChanged:
    """A booking moved through its lifecycle; `actor_id` is None for a system action (expiry)."""

    change: BookingChange
    booking: BookingRecord
    actor_id: str | None


@dataclass(frozen=True)
class SessionReminderDue:
    """A session starts in `ahead` (e.g. "24 hours"); `reminder_id` makes notifying it idempotent."""

    booking: BookingRecord
    reminder_id: str
    ahead: str
    due_at: datetime


@dataclass(frozen=True)
class MeetingScheduled:
    """A confirmed booking's meeting exists: the booking shows its id."""

    booking_id: str
    meeting_id: str


SessionOutcome = Literal["completed", "no_show", "host_absent"]


@dataclass(frozen=True)
class SessionEnded:
    """A booking's meeting is over with an outcome its booking takes (delivered again until it has)."""

    booking_id: str
    meeting_id: str
    outcome: SessionOutcome


MeetingNoticeKind = Literal["starting", "admitted", "denied", "recording_started", "no_show"]


@dataclass(frozen=True)
class MeetingNotice:
    """Something in a meeting that the listed users are told about (notifications, neutral words)."""

    kind: MeetingNoticeKind
    meeting_id: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class BookingPaymentChanged:
    """Billing moved a booking's payment (`payment_status`), and, after a refund, the total refunded."""

    booking_id: str
    payment_status: str
    refund_amount: int | None = None


@dataclass(frozen=True)
class InvoicePaymentFailed:
    """Collecting an invoice of `user_id` failed (`attempt` counts Stripe's tries)."""

    user_id: str
    invoice_id: str
    attempt: int


@dataclass(frozen=True)
class PaymentDisputed:
    """A session payment's dispute opened or changed status; `admin_ids` are told."""

    booking_id: str
    dispute_id: str
    status: str
    admin_ids: tuple[str, ...]


@dataclass(frozen=True)
class AssignmentChanged:
    """A worksheet assignment was assigned, submitted, given feedback or asked about, by `actor_id`."""

    change: AssignmentChange
    assignment: Assignment
    actor_id: str


@dataclass(frozen=True)
class AssignmentReminderDue:
    """An assignment is due within 24 hours (`kind` "due_soon") or past due ("overdue"); `reminder_id` makes
    notifying it idempotent."""

    assignment: Assignment
    reminder_id: str
    kind: str


@dataclass(frozen=True)
class WorksheetSafetyFlagged:
    """A submitted PHQ-9 answered item 9 (thoughts of self-harm) above "Not at all": the therapist must know."""

    assignment: Assignment


class EventBus:
    """In-process publish/subscribe between features, keyed by event class."""

    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber[Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, kind: type[E], subscriber: Subscriber[E]) -> None:
        """Call `subscriber` with every published event of class `kind`."""
        self._subscribers.setdefault(kind, []).append(subscriber)

    async def publish(self, event: object, turn: Turn | None = None) -> None:
        """Announce an event; subscribers run in the background (failures are logged), each inside `turn()` when
        given (the publisher's way to make background work wait for the requests it must not slow down)."""
        for subscriber in self._subscribers.get(type(event), ()):
            task = asyncio.create_task(self._run(subscriber, event, turn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def deliver(self, event: object) -> None:
        """Run every subscriber of the event now, in order; the first failure propagates."""
        for subscriber in self._subscribers.get(type(event), ()):
            await subscriber(event)

    async def _run(self, subscriber: Subscriber[Any], event: object, turn: Turn | None) -> None:
        try:
            if turn is None:
                await subscriber(event)
            else:
                async with turn():
                    await subscriber(event)
        except Exception:
            log.exception("subscriber %s failed on %s", getattr(subscriber, "__qualname__", subscriber),
                          type(event).__name__)

    async def drain(self) -> None:
        """Wait until every running subscriber has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
