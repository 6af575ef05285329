"""The scheduler: auto-decline of unconfirmed bookings, reminders sent exactly once by several loops."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from clock import iso
from handlers.auth import User
from handlers.booking.slots import units
from rest.app_keys import JOBS, MONGO_DB
from tests.booking.helpers import NS, at, book, collect_events, fix_clock, slots, therapist
from tests.conftest import RunningServer, StartServer

NOW = at("2026-03-01T00:00")
START = at("2026-03-03T10:00")


async def test_unconfirmed_booking_is_declined_as_expired(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)
    clock = fix_clock(server, now=NOW)
    events = collect_events(server)
    t = await therapist(server, policy={"confirmWithinHours": 12})
    client = await server.client("c1", "client", NS)
    late = await book(client, "t1", START)
    soon = await book(client, "t1", NOW + timedelta(hours=3), "r2")   # its start comes before 12 h pass
    clock[0] = NOW + timedelta(hours=3)
    assert await server.booking.bookings.decline_expired() == 1
    declined = await client.expect("booking:updated", lambda b: b["id"] == soon["id"] and b["status"] == "declined")
    assert declined["reason"] == "expired"
    clock[0] = NOW + timedelta(hours=12) - timedelta(seconds=1)
    assert await server.booking.bookings.decline_expired() == 0
    clock[0] = NOW + timedelta(hours=12)
    await server.booking.bookings.tick()
    declined = await t.ok("booking:get", {"bookingId": late["id"]})
    assert (declined["status"], declined["reason"]) == ("declined", "expired")
    await t.error("booking:confirm", {"bookingId": late["id"]}, "precondition_failed")
    assert await server.booking.bookings.decline_expired() == 0
    assert iso(START) in await slots(client, "t1", START, START + timedelta(hours=1))
    await server.shared.bus.drain()
    assert [(e.change, e.actor_id) for e in events if e.change == "declined"] == [("declined", None)] * 2


async def _confirmed_bookings(server: RunningServer, count: int, first_start) -> list[str]:  # type: ignore[no-untyped-def]
    """`count` confirmed bookings of 15 minutes, four therapists, created through the handler."""
    booking, ids = server.booking.bookings, []
    for n in range(4):
        await therapist(server, f"t{n}", sessionMinutes=15, bufferMinutes=0)
    for i in range(count):
        therapist_id, start = f"t{i % 4}", first_start + timedelta(minutes=15 * (i // 4))
        created = await booking.create(User(f"c{i}", "client", None), therapist_id, start, f"r{i}", None)
        await booking.confirm(User(therapist_id, "therapist", None), created.id)
        ids.append(created.id)
    return ids


async def test_two_loops_send_a_hundred_reminders_exactly_once(start_server: StartServer) -> None:
    # The background loops stay off so that only the six loops below take reminders.
    one = await start_server(redis=True, run_worker_in_web=False)
    two = await start_server(redis=True, run_worker_in_web=False)
    clock = fix_clock(one, two, now=NOW)
    ids = await _confirmed_bookings(one, 100, at("2026-03-02T08:00"))
    db = one.app[MONGO_DB]
    assert await db["booking_reminders"].count_documents({}) == 200
    clock[0] = at("2026-03-01T14:00")   # every 24 h reminder due, no 1 h reminder yet
    ticks = [s.booking.reminders.tick() for s in (one, two) for _ in range(3)]
    counts = await asyncio.gather(*ticks)
    assert sum(counts) == 100, counts
    sent = await db["booking_reminders"].find({"kind": "24h"}).to_list()
    assert len(sent) == 100 and all(r["sent"] and r["attempts"] == 1 and r["outcome"] == "sent" for r in sent)
    notes = await db["notifications"].find({"dedupeKey": {"$regex": "^reminder:"}}).to_list()
    assert len(notes) == 200 and len({(n["userId"], n["dedupeKey"]) for n in notes}) == 200
    assert {n["data"]["bookingId"] for n in notes} == set(ids)
    assert {n["body"] for n in notes} == {"Your session starts in 24 hours"}
    assert await one.booking.reminders.tick() == 0


async def test_a_crashed_claim_is_sent_after_its_lease(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)
    clock = fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    scheduler = server.booking.reminders
    clock[0] = START - timedelta(hours=23)
    crashed = await scheduler.store.claim(clock[0], scheduler.lease)   # a loop that died before sending
    assert crashed is not None and crashed.kind == "24h"
    assert await scheduler.tick() == 0   # leased to the dead loop
    clock[0] += scheduler.lease - timedelta(seconds=1)
    assert await scheduler.tick() == 0
    clock[0] += timedelta(seconds=1)
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    reminder = await server.app[MONGO_DB]["booking_reminders"].find_one({"kind": "24h"})
    assert reminder["attempts"] == 2 and reminder["outcome"] == "sent"
    assert not await scheduler.store.finish(crashed, clock[0], "sent")   # the dead loop's lease is void
    page = await (await server.client("c1", "client", "/notifications")).ok("notification:list", {})
    reminders = [n for n in page["items"] if n["title"] == "Session reminder"]
    assert [n["body"] for n in reminders] == ["Your session starts in 24 hours"]
    clock[0] = START   # every loop was down for the 1 h reminder's whole window: it is dropped, not sent late
    assert await scheduler.tick() == 0
    skipped = await server.app[MONGO_DB]["booking_reminders"].find_one({"kind": "1h"})
    assert skipped["outcome"] == "skipped" and skipped["attempts"] == 1


async def test_cancel_removes_and_reschedule_moves_reminders(server: RunningServer) -> None:
    clock = fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    later_start = START + timedelta(days=1)
    await client.ok("booking:reschedule", {"bookingId": booking["id"], "start": iso(later_start)})
    clock[0] = START - timedelta(minutes=30)   # the old times are due, the new are not
    assert await server.booking.reminders.tick() == 0
    await client.ok("booking:cancel", {"bookingId": booking["id"]})
    clock[0] = later_start - timedelta(minutes=30)
    assert await server.booking.reminders.tick() == 0
    assert await server.app[MONGO_DB]["notifications"].count_documents({"title": "Session reminder"}) == 0


async def test_the_periodic_job_sends_reminders(start_server: StartServer) -> None:
    server = await start_server(booking_tick_seconds=0.1)
    clock = fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    watcher = await server.client("c1", "client", "/notifications")
    clock[0] = START - timedelta(hours=23)
    created = await watcher.expect("notification:created", lambda n: n["title"] == "Session reminder", timeout=3)
    assert created["data"] == {"bookingId": booking["id"]}
    assert "booking-scheduler" in [job.name for job in server.app[JOBS]]


async def test_claims_left_by_a_crashed_request_are_repaired(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)
    clock = fix_clock(server, now=NOW)
    await therapist(server)
    client = await server.client("c1", "client", NS)
    kept = await book(client, "t1", START + timedelta(hours=2))
    store = server.booking.bookings.store
    await store.claim("t1", "ghost", units(START, START + timedelta(minutes=50), 10), NOW)  # never inserted
    await store.settle(kept["id"], settled=False, now=NOW)   # a cancel that died before touching the booking
    assert await slots(client, "t1", START, START + timedelta(hours=1)) == [iso(START)]  # bookings are truth
    await client.error("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "x"}, "conflict")
    clock[0] = NOW + timedelta(minutes=3)
    await server.booking.bookings.tick()
    await book(client, "t1", START, "r2")
    claims = server.app[MONGO_DB]["booking_claims"]
    assert await claims.count_documents({"bookingId": kept["id"], "settled": True}) == 12
    assert await claims.count_documents({"bookingId": "ghost"}) == 0
