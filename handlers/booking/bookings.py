"""Bookings: race-proof creation through claimed time units, the lifecycle, refunds and auto-decline."""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clock import Clock
from errors import Conflict, NotFound, PreconditionFailed
from handlers.auth import User
from handlers.booking.availability import NAMESPACE, AvailabilityHandler
from handlers.booking.deltas import ShownBooking
from handlers.booking.reminders import ReminderScheduler
from handlers.booking.slots import fits, refund_percent, units
from handlers.events import (
    BookingChange,
    BookingChanged,
    BookingPaymentChanged,
    EventBus,
    MeetingScheduled,
    SessionEnded,
)
from handlers.jobs import QueueCounters
from handlers.page import Page, read_time_cursor, time_cursor
from handlers.publisher import Publisher
from stores.booking.bookings import ACTIVE, CAS_ATTEMPTS, BookingFilter, BookingRecord, BookingStore, NewBooking
from stores.crypto import Cipher
from stores.mongo import new_id

SETTLE_AFTER = timedelta(minutes=2)  # claims in doubt longer than this belong to a crashed request
Span = tuple[datetime, datetime, int]
Transition = Callable[[], Awaitable["BookingRecord | None"]]
PAYMENT_MOVES = {  # payment status -> the statuses it may follow (a late, older update is dropped)
    "pending": ("none", "failed"), "failed": ("none", "pending"), "paid": ("none", "pending", "failed"),
    "partially_refunded": ("paid", "partially_refunded"), "refunded": ("paid", "partially_refunded"),
}


@dataclass(frozen=True)
class Collaborators:
    """What the booking handler works with besides its store."""

    availability: AvailabilityHandler
    reminders: ReminderScheduler
    publisher: Publisher
    bus: EventBus
    cipher: Cipher
    clock: Clock


class BookingHandler:
    """booking:* requests, plus the scheduler tick (auto-decline, reminders, claim repair)."""

    def __init__(self, store: BookingStore, with_: Collaborators) -> None:
        self.store = store
        self.availability = with_.availability
        self.reminders = with_.reminders
        self.publisher = with_.publisher
        self.bus = with_.bus
        self.cipher = with_.cipher
        self.clock = with_.clock
        self.expiries = QueueCounters()  # declined for want of confirmation (job monitoring)

    # -- reading -----------------------------------------------------------------------------------

    def shown(self, record: BookingRecord) -> ShownBooking:
        """The booking as its parties see it (the note opened)."""
        note = self.cipher.open_text(record.note, record.id) if record.note else None
        return ShownBooking(**vars(record), note_text=note)

    async def own(self, user: User, booking_id: str) -> BookingRecord:
        """A booking the caller is a party to (any, for admins); `not_found` for everyone else."""
        record = await self.store.get(booking_id)
        if record is None or not (record.party(user.id) or user.is_admin):
            raise NotFound("No such booking")
        return record

    async def get(self, user: User, booking_id: str) -> ShownBooking:
        """booking:get."""
        return self.shown(await self.own(user, booking_id))

    async def page(self, user: User, status: str | None, from_: datetime | None, to: datetime | None,
                   limit: int, cursor: str | None) -> Page[ShownBooking]:
        """booking:list: the caller's own bookings (all for admins), by start time."""
        party = None if user.is_admin else ("therapist" if user.is_therapist else "client")
        records = await self.store.page(party, user.id, BookingFilter(status, from_, to), read_time_cursor(cursor),
                                        limit + 1)
        more = len(records) > limit
        records = records[:limit]
        next_cursor = time_cursor(records[-1].start, records[-1].id) if more else None
        return Page([self.shown(r) for r in records], next_cursor)

    # -- creating ----------------------------------------------------------------------------------

    async def create(self, user: User, therapist_id: str, start: datetime, request_id: str,
                     note: str | None) -> ShownBooking:
        """booking:create: claim the time units first (the database settles races), then insert."""
        existing = await self.store.by_request(user.id, request_id)
        if existing is not None:
            return self.shown(existing)
        found = await self.availability.rules(therapist_id)
        if found is None:
            raise NotFound("This therapist takes no bookings")
        rules, policy = found
        now = self.clock()
        _refuse(fits(rules, start, now))
        booking_id, end = new_id(), start + rules.session
        try:
            await self.store.claim(therapist_id, booking_id, units(start, end, rules.buffer_minutes), now)
        except Conflict:
            again = await self.store.by_request(user.id, request_id)
            if again is None:
                raise
            return self.shown(again)
        new = NewBooking(id=booking_id, client_id=user.id, therapist_id=therapist_id, start=start, end=end,
                         policy=policy, buffer_minutes=rules.buffer_minutes, request_id=request_id,
                         note=self.cipher.seal_text(note, booking_id) if note else None,
                         expires_at=_deadline(policy, now, start), created_at=now)
        record, created = await self._insert(new)
        if not created:
            return self.shown(record)
        await self.store.settle(booking_id)
        return await self._changed(record, "requested", user.id, [_span(record)])

    async def _insert(self, new: NewBooking) -> tuple[BookingRecord, bool]:
        try:
            record, created = await self.store.insert(new)
        except BaseException:
            await self.store.release(new.id)
            raise
        if not created:
            await self.store.release(new.id)
        return record, created

    # -- lifecycle ---------------------------------------------------------------------------------

    async def confirm(self, user: User, booking_id: str) -> ShownBooking:
        """booking:confirm (the booking's therapist): pending -> confirmed, reminders scheduled."""
        record = await self._as_therapist(user, booking_id)
        updated = await self.store.confirm_if_pending(record, self.clock())
        if updated is None:
            raise PreconditionFailed(f"A {await self._status(record)} booking cannot be confirmed")
        await self._remind(updated)
        return await self._changed(updated, "confirmed", user.id, [])

    async def decline(self, user: User, booking_id: str, reason: str | None) -> ShownBooking:
        """booking:decline (the booking's therapist): pending -> declined, time freed."""
        record = await self._as_therapist(user, booking_id)
        updated = await self._end(booking_id, "declined", user.id, lambda: self.store.decline_if_pending(
            booking_id, reason, self.clock(), current=record))
        if updated is None:
            raise PreconditionFailed(f"A {await self._status(record)} booking cannot be declined")
        return updated

    async def cancel(self, user: User, booking_id: str, reason: str | None) -> ShownBooking:
        """booking:cancel (either party): refund per the snapshotted tiers for a client, 100 % otherwise."""
        record = await self.own(user, booking_id)
        now = self.clock()
        by = "client" if user.id == record.client_id else "therapist" if user.id == record.therapist_id else "admin"
        percent = refund_percent(record.policy["refund_tiers"], record.start, now) if by == "client" else 100
        updated = await self._end(booking_id, "cancelled", user.id,
                                  lambda: self.store.cancel_if_active(record, by, reason, percent, now))
        if updated is None:
            status = await self._status(record)
            raise PreconditionFailed(f"A {status} booking cannot be cancelled" if status not in ACTIVE
                                     else "The session is over")
        return updated

    async def reschedule(self, user: User, booking_id: str, start: datetime) -> ShownBooking:
        """booking:reschedule (either party): claim the new time, move the booking, then free the old time."""
        record = await self.own(user, booking_id)
        found = await self.availability.rules(record.therapist_id)
        if record.status not in ACTIVE or found is None:
            raise PreconditionFailed(f"A {record.status} booking cannot be rescheduled")
        now, length = self.clock(), record.end - record.start
        _refuse(fits(found[0], start, now, length))
        old = set(units(record.start, record.end, record.buffer_minutes))
        new = set(units(start, start + length, record.buffer_minutes))
        gained, lost = sorted(new - old), sorted(old - new)
        await self.store.claim(record.therapist_id, booking_id, gained, now)
        await self.store.settle(booking_id, lost, settled=False, now=now)
        expires_at = _deadline(record.policy, record.created_at, start) if record.status == "pending" else None
        updated = await self.store.move_if_unmoved(record, start, start + length, expires_at, now)
        if updated is None:
            await self.store.release(booking_id, gained)
            await self.store.settle(booking_id, lost)
            raise PreconditionFailed("The booking changed meanwhile; reload it")
        await self.store.release(booking_id, lost)
        await self.store.settle(booking_id, sorted(new))
        if updated.status == "confirmed":
            await self._remind(updated)
        return await self._changed(updated, "rescheduled", user.id, [_span(record), _span(updated)])

    async def _remind(self, record: BookingRecord) -> None:
        """Make the reminders match the booking; again from the stored one if it changed meanwhile.

        Two changes can finish in either order (a confirm's old time after a reschedule's new one); the
        one that sees a newer `rev` after writing its reminders writes them again, so the last word is
        always the stored booking's.
        """
        for _ in range(CAS_ATTEMPTS):   # each round means another change got through meanwhile
            if record.status == "confirmed":
                await self.reminders.schedule(record)
            else:
                await self.reminders.remove(record.id)
            latest = await self.store.get(record.id)
            if latest is None or latest.rev == record.rev:
                return
            record = latest

    async def _status(self, record: BookingRecord) -> str:
        """The booking's status now (a change that failed may have lost to another since `record` was read)."""
        latest = await self.store.get(record.id)
        return (latest or record).status

    async def _as_therapist(self, user: User, booking_id: str) -> BookingRecord:
        record = await self.own(user, booking_id)
        if user.id != record.therapist_id and not user.is_admin:
            raise NotFound("No such booking")
        return record

    async def _end(self, booking_id: str, change: BookingChange, actor: str | None,
                   transition: Transition) -> ShownBooking | None:
        """Move a booking to a final status and free its time; claims are marked in doubt while it happens."""
        await self.store.settle(booking_id, settled=False, now=self.clock())
        updated = await transition()
        if updated is None:
            await self.store.settle(booking_id)
            return None
        await self.store.release(booking_id)
        await self.reminders.remove(booking_id)
        return await self._changed(updated, change, actor, [_span(updated)])

    async def _changed(self, record: BookingRecord, change: BookingChange, actor: str | None,
                       spans: list[Span]) -> ShownBooking:
        """booking:updated to both parties, the domain event, and availability:updated for changed time;
        returns the booking as its parties see it (its note opened once for all of them)."""
        pads = [(start, end, timedelta(minutes=buffer)) for start, end, buffer in spans]
        if pads:
            await self.availability.changed(record.therapist_id, [(s - pad, e + pad) for s, e, pad in pads])
        shown = self.shown(record)
        await asyncio.gather(*(self.publisher.to_user(NAMESPACE, party, "booking:updated", shown)
                               for party in {record.client_id, record.therapist_id}))
        await self.bus.publish(BookingChanged(change, record, actor))
        return shown

    # -- meetings --------------------------------------------------------------------------------

    async def attach_meeting(self, event: MeetingScheduled) -> None:
        """The booking's meeting exists: store its id and tell both parties."""
        updated = await self.store.set_meeting(event.booking_id, event.meeting_id, self.clock())
        if updated is not None:
            shown = self.shown(updated)
            await asyncio.gather(*(self.publisher.to_user(NAMESPACE, party, "booking:updated", shown)
                                   for party in {updated.client_id, updated.therapist_id}))

    async def take_outcome(self, event: SessionEnded) -> None:
        """The booking's meeting ended: completed, no_show, or (host absent) cancelled by the therapist."""
        if event.outcome == "host_absent":
            await self.cancel_for_absent_host(event.booking_id)
        else:
            await self.finish(event.booking_id, event.outcome)

    async def finish(self, booking_id: str, outcome: BookingChange) -> ShownBooking | None:
        """confirmed -> completed / no_show (a system action); None when the booking is not confirmed."""
        record = await self.store.get(booking_id)
        updated = await self.store.finish_if_confirmed(record, outcome, self.clock()) if record else None
        if updated is None:
            return None
        await self.reminders.remove(booking_id)
        return await self._changed(updated, outcome, None, [])

    async def cancel_for_absent_host(self, booking_id: str) -> ShownBooking | None:
        """The therapist never came: cancelled by the therapist (a system action), refunded 100 %."""
        record = await self.store.get(booking_id)
        if record is None:
            return None
        now = self.clock()
        return await self._end(booking_id, "cancelled", None, lambda: self.store.cancel_if_active(
            record, "therapist", "host_absent", 100, now))

    async def payment_changed(self, event: BookingPaymentChanged) -> None:
        """Billing moved the booking's payment: store it (never backwards) and tell both parties."""
        updated = await self.store.set_payment_status(event.booking_id, event.payment_status,
                                                      PAYMENT_MOVES[event.payment_status], event.refund_amount,
                                                      self.clock())
        if updated is not None:
            await self._changed(updated, "payment", None, [])

    # -- background ------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One scheduler pass: auto-decline, due reminders, repair of claims left by crashed requests."""
        await self.decline_expired()
        await self.reminders.tick()
        await self.repair_claims()

    async def decline_expired(self) -> int:
        """Decline (reason `expired`) every pending booking past its confirmation deadline; exactly once."""
        now, count = self.clock(), 0
        for booking_id in await self.store.due_expiries(now):
            expire = functools.partial(self.store.decline_if_pending, booking_id, "expired", now, expired_only=True)
            if await self._end(booking_id, "declined", None, expire):
                count += 1
        self.expiries.succeeded(count)
        return count

    async def repair_claims(self) -> None:
        """Make claims in doubt for a while match their booking again (a process died mid-change)."""
        for booking_id in await self.store.unsettled_bookings(self.clock() - SETTLE_AFTER):
            record = await self.store.get(booking_id)
            if record is None or record.status not in ACTIVE:
                await self.store.release(booking_id)
                continue
            keep = units(record.start, record.end, record.buffer_minutes)
            held = await self.store.claimed_units(booking_id)
            await self.store.release(booking_id, [unit for unit in held if unit not in set(keep)])
            await self.store.settle(booking_id, keep)


def _span(record: BookingRecord) -> Span:
    return record.start, record.end, record.buffer_minutes


def _deadline(policy: dict[str, Any], created_at: datetime, start: datetime) -> datetime:
    """When a pending booking is declined automatically: confirmWithinHours after creation, never past start."""
    return min(created_at + timedelta(hours=policy["confirm_within_hours"]), start)


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise PreconditionFailed(problem)

