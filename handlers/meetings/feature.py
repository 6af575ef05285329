"""Meetings: session rooms that follow bookings, the lobby, signaling, recording consent, outcomes."""
from __future__ import annotations

from handlers.events import BookingChanged
from handlers.feature import Built, Shared
from handlers.jobs import Periodic
from handlers.meetings.context import MeetingContext, Stores
from handlers.meetings.meetings import MeetingHandler
from handlers.meetings.outcomes import MeetingCloser
from handlers.meetings.recording import RecordingHandler
from handlers.meetings.room import RoomHandler
from stores.booking.bookings import BookingStore
from stores.meetings.log import AuditStore, RecordingStore
from stores.meetings.meetings import MeetingStore
from stores.meetings.membership import Memberships
from stores.meetings.mirror import HeldSeatMirror, MemorySeatMirror, RedisSeatMirror, SeatMirror
from stores.meetings.revocations import RedisRevocations
from stores.meetings.seats import SeatStore


class MeetingsFeature:
    """The handlers behind /meetings."""

    def __init__(self, meetings: MeetingHandler, room: RoomHandler, recording: RecordingHandler,
                 closer: MeetingCloser) -> None:
        self.meetings = meetings
        self.room = room
        self.recording = recording
        self.closer = closer


async def build(shared: Shared) -> Built[MeetingsFeature]:
    """Create the meeting stores (ensuring their indexes) and handlers; follow bookings; run the scheduler."""
    mirror: SeatMirror = MemorySeatMirror()
    revocations: RedisRevocations | None = None
    if shared.redis is not None:
        mirror = RedisSeatMirror(shared.redis, shared.config.redis_prefix)
        if shared.config.meeting_seat_hold_ms > 0:
            revocations = RedisRevocations(shared.redis, shared.config.redis_prefix, shared.config.redis_url)
            mirror = HeldSeatMirror(mirror, shared.config.meeting_seat_hold_ms / 1000, revocations)
    members = Memberships(shared.redis, shared.config.redis_prefix)
    stores = Stores(MeetingStore(shared.db, members), SeatStore(shared.db, mirror), AuditStore(shared.db),
                    RecordingStore(shared.db), BookingStore(shared.db))
    for store in (stores.meetings, stores.seats, stores.audit, stores.recordings):
        await store.ensure_indexes()
    shared.relations.add(stores.meetings.related)
    ctx = MeetingContext(stores, shared.publisher, shared.bus, shared.clock, shared.config, shared.cipher,
                         shared.users)
    meetings, recording, closer = MeetingHandler(ctx), RecordingHandler(ctx), MeetingCloser(ctx)
    closer.counters = shared.jobs.queue("meeting-outcomes")
    room = RoomHandler(ctx, closer, recording, shared.sockets)
    shared.bus.subscribe(BookingChanged, meetings.booking_changed)
    scheduler = Periodic("meeting-scheduler", shared.config.meeting_tick_seconds, closer.tick)

    async def close() -> None:
        if revocations is not None:
            await revocations.close()
    return Built(MeetingsFeature(meetings, room, recording, closer), jobs=(scheduler,), close=close)
