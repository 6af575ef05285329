"""The /booking namespace (CONTRACT §3): availability, open slots (live), and the booking lifecycle."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.booking.availability import avail_room
from handlers.booking.feature import BookingFeature
from realtime.base import BaseNamespace, request
from realtime.schemas.booking import (
    AvailabilityOut,
    BookingOut,
    BookingPageOut,
    BookingRef,
    CreateBooking,
    GetAvailability,
    ListBookings,
    OpenSlotsOut,
    Reschedule,
    SetAvailability,
    SlotsChangedOut,
    TherapistRef,
    WithReason,
)
from realtime.schemas.common import Empty

THERAPIST = ("therapist", "admin")
Payload = dict[str, Any]


class BookingNamespace(BaseNamespace[BookingFeature]):
    """Thin transport over the booking feature's handlers."""

    path = "/booking"
    emits = {"booking:updated": BookingOut, "availability:updated": SlotsChangedOut}


    @request("availability:set", SetAvailability, ack=AvailabilityOut, rate=(10, 0.5), roles=("therapist",))
    async def set_availability(self, sid: str, user: User, payload: Payload) -> Any:
        """Replace the calling therapist's availability."""
        return await self.handler.availability.replace(user, **payload)

    @request("availability:settings", Empty, ack=AvailabilityOut, roles=("therapist",))
    async def availability_settings(self, sid: str, user: User, payload: Payload) -> Any:
        """The calling therapist's whole availability (hours, overrides, session shape, policy)."""
        return await self.handler.availability.settings(user)

    @request("availability:get", GetAvailability, ack=OpenSlotsOut, rate=(30, 10.0))
    async def get_availability(self, sid: str, user: User, payload: Payload) -> Any:
        """Open slots of a therapist."""
        return await self.handler.availability.open_slots(payload["therapist_id"], payload["from_"], payload["to"])

    @request("availability:subscribe", TherapistRef)
    async def subscribe(self, sid: str, user: User, payload: Payload) -> Any:
        """Receive `availability:updated` for a therapist."""
        await self.shared.publisher.join(self.namespace, sid, avail_room(payload["therapist_id"]), user.id)

    @request("availability:unsubscribe", TherapistRef)
    async def unsubscribe(self, sid: str, user: User, payload: Payload) -> Any:
        """Stop receiving `availability:updated` for a therapist."""
        await self.shared.publisher.leave(self.namespace, sid, avail_room(payload["therapist_id"]), user.id)

    @request("booking:create", CreateBooking, ack=BookingOut, rate=(10, 1.0), roles=("client",))
    async def create(self, sid: str, user: User, payload: Payload) -> Any:
        """Request a session."""
        return await self.handler.bookings.create(user, **payload)

    @request("booking:confirm", BookingRef, ack=BookingOut, roles=THERAPIST)
    async def confirm(self, sid: str, user: User, payload: Payload) -> Any:
        """Confirm a pending booking."""
        return await self.handler.bookings.confirm(user, **payload)

    @request("booking:decline", WithReason, ack=BookingOut, roles=THERAPIST)
    async def decline(self, sid: str, user: User, payload: Payload) -> Any:
        """Decline a pending booking."""
        return await self.handler.bookings.decline(user, **payload)

    @request("booking:reschedule", Reschedule, ack=BookingOut, rate=(10, 1.0))
    async def reschedule(self, sid: str, user: User, payload: Payload) -> Any:
        """Move a booking to another open time."""
        return await self.handler.bookings.reschedule(user, **payload)

    @request("booking:cancel", WithReason, ack=BookingOut)
    async def cancel(self, sid: str, user: User, payload: Payload) -> Any:
        """Cancel a booking (refund per its policy)."""
        return await self.handler.bookings.cancel(user, **payload)

    @request("booking:list", ListBookings, ack=BookingPageOut)
    async def list_bookings(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's bookings."""
        return await self.handler.bookings.page(user, **payload)

    @request("booking:get", BookingRef, ack=BookingOut)
    async def get_booking(self, sid: str, user: User, payload: Payload) -> Any:
        """One of the caller's bookings."""
        return await self.handler.bookings.get(user, **payload)
