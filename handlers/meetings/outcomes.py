"""How meetings end (by the host or the clock) and what that means for their booking; the scheduler pass."""
from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from handlers.events import MeetingNotice, SessionEnded, SessionOutcome
from handlers.jobs import QueueCounters
from handlers.meetings.context import MeetingContext
from handlers.meetings.deltas import SeatEvent
from stores.meetings.meetings import MeetingRecord
from stores.meetings.seats import Seat

ENDED = ("ended", "cancelled")


def outcome_of(record: MeetingRecord) -> SessionOutcome | None:
    """A booking meeting's outcome from who was ever in it (None for ad hoc meetings)."""
    if record.booking_id is None:
        return None
    host_in = record.host_id in record.attended
    guest_in = any(uid in record.attended for uid in record.participant_ids)
    if host_in and guest_in:
        return "completed"
    return "no_show" if host_in else "host_absent"


def quality_of(seats: list[Seat]) -> list[dict[str, Any]]:
    """Per participant: median RTT, worst packet loss, median bitrate over the kept samples."""
    summary = []
    for seat in seats:
        if not seat.samples:
            continue
        def values(key: str, seat: Seat = seat) -> list[float]:
            return [float(s[key]) for s in seat.samples if s.get(key) is not None]
        rtt, loss, rate = values("rttMs"), values("packetLoss"), values("bitrateKbps")
        summary.append({"userId": seat.user_id, "samples": len(seat.samples),
                        "medianRttMs": statistics.median(rtt) if rtt else None,
                        "worstPacketLoss": max(loss) if loss else None,
                        "medianBitrateKbps": statistics.median(rate) if rate else None})
    return summary


class MeetingCloser:
    """Ends meetings exactly once and hands booking meetings' outcomes to their booking."""

    def __init__(self, ctx: MeetingContext) -> None:
        self.ctx = ctx
        self.counters = QueueCounters()  # due meetings decided (job monitoring)

    async def end(self, record: MeetingRecord, actor_id: str | None) -> MeetingRecord | None:
        """End a scheduled or live meeting (None when another change ended it first)."""
        now = self.ctx.clock()
        stores = self.ctx.stores
        seats = await stores.seats.of_meeting(record.id)
        outcome = outcome_of(record)
        ended = await stores.meetings.end(record, now, outcome, quality_of(seats),
                                          now + self.ctx.lease if outcome else None)
        if ended is None:
            return None
        if record.recording_id:
            await stores.recordings.stop(record.recording_id, now, "ended")
        await stores.seats.close_meeting(record.id)
        await self.ctx.log(record.id, actor_id, "end")
        present = [s.user_id for s in seats if s.state in ("admitted", "waiting")]
        await self.ctx.to_seats(record.id, present, "meeting:ended", self.ctx.shown(ended))
        if outcome is not None:
            await self.apply(ended)
        return ended

    async def apply(self, record: MeetingRecord) -> None:
        """The booking takes the outcome (awaited: a failure leaves it for the next scheduler pass)."""
        assert record.booking_id is not None and record.outcome is not None
        await self.ctx.bus.deliver(SessionEnded(record.booking_id, record.id, record.outcome))  # type: ignore[arg-type]
        await self.ctx.stores.meetings.outcome_applied(record.id)
        if record.outcome == "no_show":
            await self.ctx.notice(MeetingNotice("no_show", record.id, record.members))

    # -- the scheduler pass ------------------------------------------------------------------------

    async def tick(self) -> None:
        """Decide due meetings (no-show, host absent, auto-end) and give up seats left too long."""
        for record in await self.ctx.stores.meetings.claim_due(self.ctx.clock(), self.ctx.lease):
            await self.decide(record, self.ctx.clock())
            self.counters.succeeded()
        await self.give_up_seats()

    async def decide(self, record: MeetingRecord, now: datetime) -> None:
        """One claimed meeting: finish what is due, or note when to look again."""
        config = self.ctx.config
        if record.status in ENDED:
            if record.outcome and not record.outcome_applied:
                await self.apply(record)
            else:
                await self.ctx.stores.meetings.set_due(record, None)
            return
        closes = record.end + timedelta(minutes=config.meeting_grace_minutes)
        decide_at = record.start + timedelta(minutes=config.meeting_no_show_minutes)
        undecided = record.booking_id is not None and outcome_of(record) != "completed"
        if now >= closes or (undecided and now >= decide_at):
            await self.end(record, None)
            return
        await self.ctx.stores.meetings.set_due(record, decide_at if undecided else closes)

    async def give_up_seats(self) -> None:
        """Participants away longer than MEETING_RECONNECT_SECONDS have left (each seat exactly once)."""
        cutoff = self.ctx.clock() - timedelta(seconds=self.ctx.config.meeting_reconnect_seconds)
        for seat in await self.ctx.stores.seats.away_before(cutoff):
            if await self.ctx.stores.seats.move(seat.meeting_id, seat.user_id, seat, "left"):
                await self.ctx.log(seat.meeting_id, None, "left", seat.user_id)
                left = SeatEvent(seat.meeting_id, seat.user_id)
                await self.ctx.to_admitted(seat.meeting_id, "participant:left", left)
            else:
                await self.ctx.stores.seats.clear_away(seat.meeting_id, seat.user_id)
