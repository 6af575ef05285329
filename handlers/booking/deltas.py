"""What booking answers and pushes besides stored records (CONTRACT §3)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stores.booking.bookings import BookingRecord


@dataclass(frozen=True)
class ShownBooking(BookingRecord):
    """A booking as its parties see it: the note opened (it is stored sealed)."""

    note_text: str | None = None



@dataclass(frozen=True)
class OpenSlots:
    """`availability:get`: a therapist's open slots, each `(start, end)`."""

    therapist_id: str
    slots: list[tuple[datetime, datetime]]
    price: dict[str, Any] | None = None  # the session price in force ({amount, currency}), when set
    require_payment: bool = False


@dataclass(frozen=True)
class SlotsChanged:
    """`availability:updated`: open slots of a therapist in [from, to) may have changed; fetch them again."""

    therapist_id: str
    start: datetime
    end: datetime
