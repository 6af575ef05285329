"""The /booking namespace: availability, open slots (live), and the booking lifecycle."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.booking.availability import avail_room
from realtime.base import BaseNamespace, request
from realtime.schemas.booking import BookingRef, CreateBooking, GetAvailability, ListBookings, Reschedule, \
    SetAvailability, TherapistRef, WithReason

THERAPIST = ("therapist", "admin")


class BookingNamespace(BaseNamespace):
    """Thin transport over `services.booking` and `services.availability`."""

    @request("availability:set", SetAvailability, rate=(10, 0.5), roles=("therapist",))
    async def set_availability(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Replace the calling therapist's availability."""
        return await self.services.availability.set(user, **payload)

    @request("availability:get", GetAvailability, rate=(30, 10.0))
    async def get_availability(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Open slots of a therapist."""
        return await self.services.availability.open(user, **payload)

    @request("availability:subscribe", TherapistRef)
    async def subscribe(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Receive `availability:updated` for a therapist."""
        await self.services.publisher.join(self.namespace, sid, avail_room(payload["therapist_id"]), user.id)
        return {}

    @request("availability:unsubscribe", TherapistRef)
    async def unsubscribe(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Stop receiving `availability:updated` for a therapist."""
        await self.services.publisher.leave(self.namespace, sid, avail_room(payload["therapist_id"]), user.id)
        return {}

    @request("booking:create", CreateBooking, rate=(10, 1.0), roles=("client",))
    async def create(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Request a session."""
        return await self.services.booking.create(user, **payload)

    @request("booking:confirm", BookingRef, roles=THERAPIST)
    async def confirm(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Confirm a pending booking."""
        return await self.services.booking.confirm(user, **payload)

    @request("booking:decline", WithReason, roles=THERAPIST)
    async def decline(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Decline a pending booking."""
        return await self.services.booking.decline(user, **payload)

    @request("booking:reschedule", Reschedule, rate=(10, 1.0))
    async def reschedule(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Move a booking to another open time."""
        return await self.services.booking.reschedule(user, **payload)

    @request("booking:cancel", WithReason)
    async def cancel(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Cancel a booking (refund per its policy)."""
        return await self.services.booking.cancel(user, **payload)

    @request("booking:list", ListBookings)
    async def list(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """The caller's bookings."""
        return await self.services.booking.list(user, **payload)

    @request("booking:get", BookingRef)
    async def get(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """One of the caller's bookings."""
        return await self.services.booking.get(user, **payload)

