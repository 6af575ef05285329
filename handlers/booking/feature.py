"""Booking: availability, open slots, the booking lifecycle and reminders, built from their stores."""
from __future__ import annotations

from datetime import timedelta

from handlers.booking.availability import AvailabilityHandler
from handlers.booking.bookings import BookingHandler, Collaborators
from handlers.booking.reminders import ReminderScheduler
from handlers.events import BookingPaymentChanged, MeetingScheduled, SessionEnded
from handlers.feature import Built, Shared
from handlers.jobs import Periodic
from stores.booking.availability import AvailabilityStore
from stores.booking.bookings import BookingStore
from stores.booking.reminders import ReminderStore


class BookingFeature:
    """The handlers behind /booking."""

    def __init__(self, availability: AvailabilityHandler, bookings: BookingHandler) -> None:
        self.availability = availability
        self.bookings = bookings
        self.reminders = bookings.reminders


async def build(shared: Shared) -> Built[BookingFeature]:
    """Create the booking stores (ensuring their indexes) and handlers; the scheduler runs as a periodic job."""
    availability_store, booking_store, reminder_store = (AvailabilityStore(shared.db), BookingStore(shared.db),
                                                         ReminderStore(shared.db))
    for store in (availability_store, booking_store, reminder_store):
        await store.ensure_indexes()
    shared.relations.add(booking_store.related)
    config = shared.config
    availability = AvailabilityHandler(availability_store, booking_store, shared.publisher, shared.clock)
    reminders = ReminderScheduler(reminder_store, booking_store, shared.bus,
                                  timedelta(seconds=config.booking_lease_seconds), shared.clock)
    bookings = BookingHandler(booking_store, Collaborators(availability, reminders, shared.publisher, shared.bus,
                                                           shared.cipher, shared.clock))
    reminders.counters = shared.jobs.queue("booking-reminders")
    bookings.expiries = shared.jobs.queue("booking-expiries")
    shared.bus.subscribe(MeetingScheduled, bookings.attach_meeting)
    shared.bus.subscribe(SessionEnded, bookings.take_outcome)
    shared.bus.subscribe(BookingPaymentChanged, bookings.payment_changed)
    scheduler = Periodic("booking-scheduler", config.booking_tick_seconds, bookings.tick)
    return Built(BookingFeature(availability, bookings), jobs=(scheduler,))
