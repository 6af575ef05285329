"""Usage: completed session minutes per therapist and billing period (calendar month, UTC).

Recorded from `BookingChanged("completed")`, once per booking. Reporting it to Stripe as metered usage
needs usage records (or billing meters), which localstripe does not offer; careline keeps the totals.
"""
from __future__ import annotations

from datetime import datetime

from clock import Clock
from handlers.auth import User
from handlers.events import BookingChanged
from stores.billing.usage import UsageStore, UsageTotal


def period_of(moment: datetime) -> str:
    """The billing period a time falls in: `YYYY-MM` (UTC)."""
    return moment.strftime("%Y-%m")


class Usage:
    """Counts completed sessions and answers billing:usage."""

    def __init__(self, store: UsageStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def booking_changed(self, event: BookingChanged) -> None:
        """A completed session counts its booked minutes for its therapist (once)."""
        if event.change != "completed":
            return
        booking = event.booking
        minutes = int((booking.end - booking.start).total_seconds() // 60)
        await self.store.record(booking.id, booking.therapist_id, period_of(booking.start), minutes, self.clock())

    async def total(self, user: User, period: str | None) -> UsageTotal:
        """billing:usage: the calling therapist's minutes in a period (this month by default)."""
        return await self.store.total(user.id, period or period_of(self.clock()))
