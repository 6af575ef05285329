"""Notifications benchmark: domain event -> `notification:created` latency, and a 10,000-user broadcast.

    python -m bench.notifications [--events 500] [--users 10000] [--pin]

Runs careline in this process on the embedded store with the in-process manager; the client
runs in the same event loop, so `--pin` (one CPU) measures everything on one core.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import socketio
from aiohttp import web

from config import Config
from handlers.auth import mint_token
from handlers.events import BookingChanged
from rest.app_keys import HANDLERS, MONGO_DB, SHARED
from stores.booking.bookings import BookingRecord
from stores.embedded import EmbeddedMongo


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


async def start(config: Config) -> tuple[web.AppRunner, str]:
    """Serve careline on a free loopback port."""
    from server import create_app

    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def client(config: Config, url: str, user_id: str, role: str, inbox: asyncio.Queue[Any]) -> socketio.AsyncClient:
    """A connected /notifications client that queues every `notification:created`."""
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("notification:created", lambda data: inbox.put_nowait((time.perf_counter(), data)),
           namespace="/notifications")
    await sio.connect(url, namespaces=["/notifications"], transports=["websocket"],
                      auth={"token": mint_token(config, user_id, role, user_id, 3600)})
    return sio


def _booking(booking_id: str) -> BookingRecord:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    return BookingRecord(id=booking_id, client_id="c0", therapist_id="t0", start=start, end=start + timedelta(minutes=50),
                         status="confirmed", policy={}, buffer_minutes=10, request_id=booking_id, note=None,
                         cancelled_by=None, reason=None, refund=None, payment_status="none", meeting_id=None,
                         expires_at=None, created_at=start, updated_at=start)


async def event_latency(bus: Any, inbox: asyncio.Queue[Any], count: int, phase: str) -> list[float]:
    """Publish a confirmed booking for a connected client and time until the client has its notification."""
    samples = []
    for index in range(count):
        booking = _booking(f"{phase}{index}")
        started = time.perf_counter()
        await bus.publish(BookingChanged("confirmed", booking, "t0"))
        received, _ = await asyncio.wait_for(inbox.get(), 5)
        samples.append((received - started) * 1000)
    return samples


async def broadcast(notifications: Any, db: Any, inbox: asyncio.Queue[Any], users: int) -> tuple[float, float]:
    """Persist + emit a broadcast to `users` clients; returns (call ms, ms until a connected client has it)."""
    docs = [{"_id": f"user{i:06d}", "role": "client", "name": None} for i in range(users)]
    for start_at in range(0, users, 5000):
        await db["users"].insert_many(docs[start_at:start_at + 5000])
    started = time.perf_counter()
    count = await notifications.broadcast("client", title="Maintenance tonight", body="02:00-03:00 UTC")
    finished = time.perf_counter()
    received, _ = await asyncio.wait_for(inbox.get(), 10)
    assert count >= users
    assert await db["notification_receipts"].count_documents({}) == count
    return (finished - started) * 1000, (received - started) * 1000


async def main(events: int, users: int) -> None:
    """Run both measurements once and print the figures."""
    with tempfile.TemporaryDirectory() as data_dir:
        mongo = EmbeddedMongo(":memory:")
        await mongo.start_async()
        env = {"MONGODB_URI": mongo.uri + "&retryWrites=false",  # as server.py connects to its own
               "MONGODB_DB": "bench_notifications", "DATA_DIR": data_dir,
               "LOG_LEVEL": "WARNING"}
        config = Config.from_env(env)
        runner, url = await start(config)
        bus, db = runner.app[SHARED].bus, runner.app[MONGO_DB]
        notifications = runner.app[HANDLERS]["/notifications"].notifications  # type: ignore[attr-defined]
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        sio = await client(config, url, "c0", "client", inbox)
        await event_latency(bus, inbox, 20, "warm")
        samples = await event_latency(bus, inbox, events, "run")
        print(f"event -> notification:created over {events} events: p50 {statistics.median(samples):.2f} ms, "
              f"p99 {percentile(samples, 99):.2f} ms, max {max(samples):.2f} ms")
        call_ms, seen_ms = await broadcast(notifications, db, inbox, users)
        print(f"broadcast to {users} users: persist+emit {call_ms:.0f} ms, connected client has it after "
              f"{seen_ms:.0f} ms")
        await sio.disconnect()
        await runner.cleanup()
        mongo.stop()


def run() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--pin", action="store_true", help="pin this process to one CPU")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"cores: {os.cpu_count()} on the machine, {len(os.sched_getaffinity(0))} usable by this process "
          "(the embedded store runs as a separate process)")
    asyncio.run(main(args.events, args.users))


if __name__ == "__main__":
    run()
