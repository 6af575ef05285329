"""Booking writes as collections grow (not a test): confirm, cancel, availability:set, booking:list page 2
and the reminder claim, first on small collections, then with ~20,000 bookings and reminders stored.

    python -m bench.booking_growth [--bookings 20000] [--rounds 20]    (needs Redis on 127.0.0.1:6379)

It starts SecantusDB (on disk, as the embedded default runs) and one careline process. Confirm, cancel,
availability:set and booking:list are measured at a Socket.IO client; the reminder claim is measured at the
store (`ReminderStore.claim`), the call the scheduler makes per reminder. The grown collections are seeded
straight into the database (other therapists' past and future bookings, sent reminders, other therapists'
availability), shaped like the documents careline writes.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.booking import SECRET, call, connect, spawn  # noqa: E402
from clock import iso  # noqa: E402
from handlers.booking.slots import DEFAULT_POLICY  # noqa: E402
from stores.booking.bookings import to_doc  # noqa: E402
from stores.booking.reminders import ReminderStore  # noqa: E402
from stores.embedded import EmbeddedMongo  # noqa: E402
from stores.mongo import connect as mongo_connect  # noqa: E402
from tests.conftest import wait_healthy  # noqa: E402

WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
AVAILABILITY = {"timezone": "UTC", "weekly": WEEK, "sessionMinutes": 50, "bufferMinutes": 10,
                "minNoticeMinutes": 0, "maxDaysAhead": 365}
Timings = dict[str, list[float]]


async def timed(timings: Timings, name: str, request: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Make one request, record its milliseconds under `name`, insist on success (a rate limit waits, untimed)."""
    while True:
        began = time.perf_counter()
        ack = await request()
        if ack["ok"] or ack["error"]["code"] != "rate_limited":
            break
        await asyncio.sleep(ack["error"]["details"]["retryAfterMs"] / 1000 + 0.05)
    timings.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    assert ack["ok"], ack
    return ack["data"]  # type: ignore[no-any-return]


async def lifecycle(url: str, therapist: socketio.AsyncClient, base: datetime, phase: str, rounds: int,
                    timings: Timings) -> None:
    """`rounds` bookings by fresh clients: create (not timed), confirm, cancel; availability:set; list page 2."""
    for i in range(rounds):
        client = await connect(url, f"{phase}c{i}", "client")
        start = base + timedelta(hours=i)
        booking = await call(client, "booking:create", {"therapistId": "t1", "start": iso(start),
                                                         "requestId": f"{phase}{i}"})
        assert booking["ok"], booking
        ref = {"bookingId": booking["data"]["id"]}
        await timed(timings, "booking:confirm", functools.partial(call, therapist, "booking:confirm", ref))
        await timed(timings, "booking:cancel", functools.partial(call, client, "booking:cancel", ref))
        await client.disconnect()
    for i in range(min(rounds, 10)):  # availability:set allows a burst of 10
        payload = {**AVAILABILITY, "bufferMinutes": 10 + i % 2 * 5}
        await timed(timings, "availability:set", functools.partial(call, therapist, "availability:set", payload))
    for _ in range(rounds):
        first = await timed({}, "", lambda: call(therapist, "booking:list", {"limit": 5}))
        second = {"limit": 5, "cursor": first["nextCursor"]}
        await timed(timings, "booking:list page 2", functools.partial(call, therapist, "booking:list", second))


async def reminder_claims(store: ReminderStore, rounds: int, timings: Timings) -> None:
    """Schedule `rounds` due reminders, then time one claim per reminder (and mark each sent)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for i in range(rounds):
        await store.schedule(f"due-{uuid.uuid4().hex}", now + timedelta(hours=2), {"1h": now - timedelta(minutes=i)})
    for _ in range(rounds):
        began = time.perf_counter()
        reminder = await store.claim(now, timedelta(seconds=60))
        timings.setdefault("reminder claim", []).append((time.perf_counter() - began) * 1000)
        assert reminder is not None
        await store.finish(reminder, now, "sent")


def booking_doc(n: int, now: datetime) -> dict[str, Any]:
    """One stored booking of another therapist: mostly past, a few pending or confirmed ahead."""
    start = now + timedelta(hours=n % 4000 - 3000, minutes=5 * (n // 4000))
    ahead = ("confirmed", "cancelled", "declined", "pending")
    status = ahead[n % 4] if start > now else ahead[n % 2]
    return to_doc({"id": f"seed{n:07d}", "client_id": f"sc{n % 3000}", "therapist_id": f"st{n % 150}",
                   "start": start, "end": start + timedelta(minutes=50), "status": status,
                   "policy": DEFAULT_POLICY, "buffer_minutes": 10, "request_id": f"seed{n}", "note": None,
                   "payment_status": "none", "expires_at": start if status == "pending" else None,
                   "created_at": now, "updated_at": now, "refund": None, "cancelled_by": None, "reason": None})


def reminder_doc(n: int, now: datetime) -> dict[str, Any]:
    """One sent reminder of a past booking."""
    due = now - timedelta(hours=n % 4000)
    kind = ("24h", "1h")[n % 2]
    return {"_id": f"seed{n:07d}:{kind}:0", "bookingId": f"seed{n // 2:07d}", "kind": kind,
            "dueAt": due, "claimableAt": due + timedelta(minutes=1), "sessionStart": due + timedelta(hours=1),
            "sent": True, "attempts": 1, "lease": uuid.uuid4().hex, "outcome": "sent", "sentAt": due}


async def grow(db: Any, count: int, therapists: int) -> float:
    """Seed `count` bookings, `count` reminders and `therapists` availability documents; returns seconds."""
    began, now = time.perf_counter(), datetime.now(timezone.utc).replace(microsecond=0)
    for first in range(0, count, 1000):
        batch = range(first, min(count, first + 1000))
        await db["bookings"].insert_many([booking_doc(n, now) for n in batch])
        await db["booking_reminders"].insert_many([reminder_doc(n, now) for n in batch])
    rules = {"timezone": "UTC", "weekly": WEEK, "overrides": [], "session_minutes": 50, "buffer_minutes": 10,
             "min_notice_minutes": 0, "max_days_ahead": 365, "policy": DEFAULT_POLICY}
    others = [{"_id": f"st{n}", **rules, "calendar_version": 0, "updated_at": now} for n in range(therapists)]
    if others:
        await db["availability"].insert_many(others)
    return time.perf_counter() - began


def report(label: str, timings: Timings) -> None:
    """One line per operation: calls, p50, p90, max."""
    print(f"  {label}")
    for name, values in timings.items():
        p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
        print(f"    {name:<22} n={len(values):<3} p50 {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms"
              f"   max {max(values):7.1f} ms")


async def measure(args: argparse.Namespace) -> None:
    """Start the database and one careline process, measure small, grow, measure again."""
    mongo = EmbeddedMongo(tempfile.mkdtemp(prefix="careline-bench-growth-db-"))
    await mongo.start_async()
    name = "bench_" + uuid.uuid4().hex[:8]
    env = {"MONGODB_URI": mongo.uri, "MONGODB_DB": name, "JWT_SECRET": SECRET, "LOG_LEVEL": "WARNING",
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "BOOKING_TICK_SECONDS": "3600",
           "REDIS_PREFIX": "bench:" + uuid.uuid4().hex[:8] + ":", "MESSAGE_KEYS": "k1:" + "A" * 43,
           "DATA_DIR": tempfile.mkdtemp(prefix="careline-bench-growth-")}
    url, process = spawn(env)
    client = mongo_connect(mongo.uri, retry_writes=False)
    try:
        await wait_healthy(url, process)
        db = client[name]
        reminders = ReminderStore(db)
        therapist = await connect(url, "t1", "therapist")
        assert (await call(therapist, "availability:set", AVAILABILITY))["ok"]
        base = (datetime.now(timezone.utc) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        print(f"cores: {os.cpu_count()}  load average before: {os.getloadavg()}  (shared machine: noisy)")
        for phase, size in (("small", 0), ("grown", args.bookings)):
            if size:
                seconds = await grow(db, size, args.therapists)
                print(f"  seeded {size} bookings, {size} reminders, {args.therapists} availability docs "
                      f"in {seconds:.0f} s")
            timings: Timings = {}
            await lifecycle(url, therapist, base + timedelta(days=7 if size else 0), phase, args.rounds, timings)
            await reminder_claims(reminders, args.rounds, timings)
            counts = [await db[c].estimated_document_count() for c in ("bookings", "booking_reminders", "availability")]
            report(f"{phase}: bookings={counts[0]} reminders={counts[1]} availability={counts[2]}", timings)
        await therapist.disconnect()
        print(f"load average after: {os.getloadavg()}")
    finally:
        await client.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        mongo.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=20000, help="bookings (and reminders) to seed")
    parser.add_argument("--therapists", type=int, default=300, help="other therapists' availability docs to seed")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per operation and phase")
    asyncio.run(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
