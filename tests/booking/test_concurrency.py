"""Concurrent changes of one booking or one availability: compare-and-set writes never lose an update.

Booking changes are a conditional `update_one` on the booking's `rev` (SecantusDB scans the whole
collection for findAndModify); these tests make changes overlap, some deterministically by letting a
second request run between a change's read and its write.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from clock import iso
from rest.app_keys import MONGO_DB
from stores.booking.bookings import BookingStore
from tests.booking.helpers import NS, at, availability, book, collect_events, fix_clock, pending_booking, therapist
from tests.conftest import RunningServer, StartServer

NOW = at("2026-03-01T00:00")
START = at("2026-03-03T10:00")


def before_first_write(store: BookingStore, step: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run `step` (another request) between the next booking change's read and its write; returns its result."""
    original, done = store._swap, []

    async def swap(*args: Any) -> bool:
        if not done:
            done.append(None)
            done[0] = await step()
        return await original(*args)

    store._swap = swap  # type: ignore[method-assign]
    return done


async def test_confirm_retries_after_a_reschedule_that_wrote_first(server: RunningServer) -> None:
    events, t, client, booking = await pending_booking(server, NOW, START)
    moved_to = START + timedelta(hours=3)
    moved = before_first_write(server.booking.bookings.store, lambda: client.ok(
        "booking:reschedule", {"bookingId": booking["id"], "start": iso(moved_to)}))
    confirmed = await t.ok("booking:confirm", {"bookingId": booking["id"]})
    assert moved[0]["status"] == "pending" and moved[0]["start"] == iso(moved_to)
    assert confirmed["status"] == "confirmed" and confirmed["start"] == iso(moved_to)   # neither change is lost
    stored = await server.app[MONGO_DB]["bookings"].find_one({"_id": booking["id"]})
    assert stored["status"] == "confirmed" and stored["start"] == moved_to and stored["rev"] == 2
    reminders = await server.app[MONGO_DB]["booking_reminders"].find({}).sort("dueAt", 1).to_list()
    assert [r["dueAt"] for r in reminders] == [moved_to - timedelta(hours=24), moved_to - timedelta(hours=1)]
    await server.shared.bus.drain()
    assert [event.change for event in events] == ["requested", "rescheduled", "confirmed"]


async def test_a_cancel_that_lost_to_a_decline_fails_and_says_why(server: RunningServer) -> None:
    events, t, client, booking = await pending_booking(server, NOW, START)
    ref = {"bookingId": booking["id"]}
    declined = before_first_write(server.booking.bookings.store, lambda: t.ok("booking:decline", ref))
    error = await client.error("booking:cancel", ref, "precondition_failed")
    assert declined[0]["status"] == "declined"
    assert error["message"] == "A declined booking cannot be cancelled"
    stored = await server.app[MONGO_DB]["bookings"].find_one({"_id": booking["id"]})
    assert stored["status"] == "declined" and stored.get("cancelledBy") is None and stored["rev"] == 1
    assert await server.app[MONGO_DB]["booking_claims"].count_documents({}) == 0
    await server.shared.bus.drain()
    assert [event.change for event in events] == ["requested", "declined"]


async def test_confirm_and_ten_cancels_at_once_on_two_processes(start_server: StartServer) -> None:
    servers = [await start_server(redis=True), await start_server(redis=True)]
    fix_clock(*servers, now=NOW)
    events = [collect_events(s) for s in servers]
    t = await therapist(servers[0])
    booking = await book(await servers[0].client("c1", "client", NS), "t1", START)
    ref = {"bookingId": booking["id"]}
    sockets = [await servers[i % 2].client(("c1", "t1")[i // 5 % 2], ("client", "therapist")[i // 5 % 2], NS)
               for i in range(10)]
    acks = await asyncio.gather(t.call("booking:confirm", ref), *(s.call("booking:cancel", ref) for s in sockets))
    confirm, cancels = acks[0], acks[1:]
    assert [ack["ok"] for ack in cancels].count(True) == 1, cancels
    assert {ack["error"]["code"] for ack in cancels if not ack["ok"]} == {"precondition_failed"}
    assert next(ack for ack in cancels if ack["ok"])["data"]["status"] == "cancelled"
    assert confirm["ok"] or confirm["error"]["message"] == "A cancelled booking cannot be confirmed", confirm
    for server in servers:
        await server.shared.bus.drain()
    db = servers[0].app[MONGO_DB]
    stored = await db["bookings"].find_one({"_id": booking["id"]})
    attached = 1 if stored.get("meetingId") else 0  # a confirmed booking's meeting id is written onto it
    assert stored["status"] == "cancelled" and stored["rev"] == 1 + confirm["ok"] + attached
    assert await db["booking_claims"].count_documents({}) == 0
    names = [f"booking.{event.change}" for log in events for event in log]
    assert names.count("booking.cancelled") == 1 and names.count("booking.confirmed") == int(confirm["ok"])


async def test_availability_sets_and_bookings_at_once_lose_no_version(start_server: StartServer) -> None:
    servers = [await start_server(redis=True), await start_server(redis=True)]
    fix_clock(*servers, now=NOW)
    therapists = [await s.client("t1", "therapist", NS) for s in servers]
    first = await asyncio.gather(*(therapists[i % 2].call("availability:set", availability(bufferMinutes=5 * i))
                                   for i in range(6)))   # the first write of the document races too
    assert all(ack["ok"] for ack in first), first
    db = servers[0].app[MONGO_DB]
    assert (await db["availability"].find_one({"_id": "t1"}))["calendar_version"] == 6
    clients = [await servers[i % 2].client(f"c{i}", "client", NS) for i in range(4)]
    acks = await asyncio.gather(
        *(therapists[i % 2].call("availability:set", availability(bufferMinutes=5)) for i in range(4)),
        *(c.call("booking:create", {"therapistId": "t1", "start": iso(START + timedelta(hours=2 * i)),
                                    "requestId": "r"}) for i, c in enumerate(clients)))
    assert all(ack["ok"] for ack in acks), acks
    stored = await db["availability"].find_one({"_id": "t1"})
    assert stored["calendar_version"] == 6 + 4 + 4 and stored["buffer_minutes"] == 5


async def test_list_pages_through_bookings_that_start_together(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    for n in range(4):
        await therapist(server, f"t{n}")
    client = await server.client("c1", "client", NS)
    for n in range(4):   # the same start with four therapists, then one later
        await book(client, f"t{n}", START, f"r{n}")
    await book(client, "t0", START + timedelta(hours=2), "late")
    expected = [(b["start"], b["id"]) for b in (await client.ok("booking:list", {"limit": 50}))["items"]]
    assert len(expected) == 5 and expected == sorted(expected)
    admin = await server.client("a1", "admin", NS)
    for who, limit, extra in ((client, 1, {}), (client, 3, {}), (admin, 2, {}), (admin, 1, {"from": iso(START)}),
                              (client, 2, {"to": iso(START + timedelta(hours=1))})):
        page = await who.ok("booking:list", {"limit": limit, **extra})
        seen = [(b["start"], b["id"]) for b in page["items"]]
        while page["nextCursor"]:
            page = await who.ok("booking:list", {"limit": limit, "cursor": page["nextCursor"], **extra})
            seen += [(b["start"], b["id"]) for b in page["items"]]
        assert seen == (expected[:4] if "to" in extra else expected), (limit, extra)


async def test_twenty_claims_at_once_take_each_due_reminder_once(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)   # no background loop takes reminders meanwhile
    store = server.booking.reminders.store
    for n in range(10):
        await store.schedule(f"b{n}", START, {"1h": NOW - timedelta(minutes=n)})
    await store.schedule("later", START, {"1h": NOW + timedelta(minutes=1)})
    claims = await asyncio.gather(*(store.claim(NOW, timedelta(seconds=60)) for _ in range(20)))
    taken = [c for c in claims if c is not None]
    assert sorted(c.booking_id for c in taken) == [f"b{n}" for n in range(10)]
    assert len({c.lease for c in taken}) == 10 and all(c.attempts == 1 for c in taken)
    assert await store.claim(NOW, timedelta(seconds=60)) is None
    stored = {doc["_id"]: doc async for doc in server.app[MONGO_DB]["booking_reminders"].find({})}
    assert all(stored[c.id]["lease"] == c.lease for c in taken)


async def test_reminders_follow_a_reschedule_that_finished_before_the_confirm(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    moved_to = START + timedelta(hours=3)
    store = server.booking.reminders.store
    original, moved = store.schedule, []

    async def schedule(*args: Any) -> None:   # the confirm wrote; the reschedule runs before its reminders
        if not moved:
            moved.append(None)
            moved[0] = await client.ok("booking:reschedule", {"bookingId": booking["id"], "start": iso(moved_to)})
        await original(*args)

    store.schedule = schedule  # type: ignore[method-assign]
    confirmed = await t.ok("booking:confirm", {"bookingId": booking["id"]})
    assert confirmed["start"] == iso(START) and moved[0]["status"] == "confirmed"
    reminders = await server.app[MONGO_DB]["booking_reminders"].find({}).sort("dueAt", 1).to_list()
    assert [(r["dueAt"], r["sessionStart"]) for r in reminders] == [
        (moved_to - timedelta(hours=24), moved_to), (moved_to - timedelta(hours=1), moved_to)]
