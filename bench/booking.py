"""Booking benchmark (not a test): availability:get over 62 days with 300 bookings; the 50-way race.

    python -m bench.booking            (needs Redis on 127.0.0.1:6379; starts SecantusDB itself)

Two careline processes share the database and Redis, as in production. Run it once, briefly.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clock import iso  # noqa: E402
from config import Config  # noqa: E402
from handlers.auth import mint_token  # noqa: E402
from stores.embedded import EmbeddedMongo, free_port  # noqa: E402
from tests.conftest import wait_healthy  # noqa: E402 - the same readiness probe as the tests

SECRET = "bench-secret-" + "x" * 32
NS = "/booking"


def token(sub: str, role: str) -> str:
    """A token the bench servers accept."""
    return mint_token(Config.from_env({"JWT_SECRET": SECRET}), sub, role, sub, 3600)


async def connect(url: str, sub: str, role: str, namespace: str = NS) -> socketio.AsyncClient:
    """A connected client on `namespace` (/booking by default)."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, namespaces=[namespace], auth={"token": token(sub, role)}, transports=["websocket"])
    return client


async def call(client: socketio.AsyncClient, event: str, data: dict) -> dict:
    """One request; returns the ack envelope."""
    return await client.call(event, data, namespace=NS, timeout=30)  # type: ignore[no-any-return]


def spawn(env: dict[str, str], stdout: Any = None) -> tuple[str, subprocess.Popen[bytes]]:
    """`python server.py` on a free port (its log to `stdout`, a file, when given)."""
    port = str(free_port())
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env={**os.environ, **env, "PORT": port,
                                                                             "HOST": "127.0.0.1"},
                               stdout=stdout, stderr=subprocess.STDOUT if stdout else None)
    return f"http://127.0.0.1:{port}", process


async def seed(url: str, start: datetime) -> socketio.AsyncClient:
    """A therapist open all week and 300 bookings spread over 62 days."""
    therapist = await connect(url, "t1", "therapist")
    weekly = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    ack = await call(therapist, "availability:set", {"timezone": "Europe/Berlin", "weekly": weekly,
                                                     "minNoticeMinutes": 0, "maxDaysAhead": 365})
    assert ack["ok"], ack
    clients = [await connect(url, f"c{n}", "client") for n in range(30)]  # 10 each: within the rate limit
    slots = (await call(clients[0], "availability:get", {"therapistId": "t1", "from": iso(start),
                                                         "to": iso(start + timedelta(days=62))}))["data"]["slots"]
    for i, slot in enumerate(slots[::2][:300]):
        ack = await call(clients[i % 30], "booking:create", {"therapistId": "t1", "start": slot["start"],
                                                             "requestId": f"seed{i}"})
        assert ack["ok"], ack
    await asyncio.gather(*(client.disconnect() for client in clients))
    return therapist


async def availability_latency(url: str, start: datetime, rounds: int = 200, cold: bool = False) -> list[float]:
    """Milliseconds per availability:get over 62 days, measured at the client (cold: a new range each call,
    so neither the busy-time nor the slot cache can answer)."""
    clients = [await connect(url, f"v{n}{cold}", "client") for n in range(rounds // 20)]  # 20 calls each: no rate limit
    payload = {"therapistId": "t1", "from": iso(start), "to": iso(start + timedelta(days=62))}
    timings = []
    for i in range(rounds):
        if cold:
            shift = timedelta(minutes=5 * (i + 1))
            payload.update({"from": iso(start - shift), "to": iso(start + timedelta(days=62) - shift)})
        began = time.perf_counter()
        ack = await call(clients[i % len(clients)], "availability:get", payload)
        timings.append((time.perf_counter() - began) * 1000)
        assert ack["ok"], ack
    await asyncio.gather(*(client.disconnect() for client in clients))
    return timings


async def race(urls: list[str], start: datetime) -> tuple[float, int, list[str]]:
    """50 clients on two processes request overlapping time at once; (slowest ms, winners, codes)."""
    clients = await asyncio.gather(*(connect(urls[i % 2], f"r{i}", "client") for i in range(50)))
    slot = start + timedelta(days=63, hours=10)

    async def one(i: int, client: socketio.AsyncClient) -> tuple[float, dict]:
        began = time.perf_counter()
        ack = await call(client, "booking:create", {"therapistId": "t1", "requestId": f"race{i}",
                                                   "start": iso(slot + timedelta(minutes=5 * (i % 10)))})
        return (time.perf_counter() - began) * 1000, ack

    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
    await asyncio.gather(*(c.disconnect() for c in clients))
    acks = [ack for _, ack in results]
    codes = [ack["error"]["code"] for ack in acks if not ack["ok"]]
    return max(ms for ms, _ in results), sum(ack["ok"] for ack in acks), codes


async def main() -> None:
    """Start the peers, seed, measure, print."""
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    env = {"MONGODB_URI": mongo.uri, "MONGODB_DB": "bench_" + uuid.uuid4().hex[:8], "JWT_SECRET": SECRET,
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "LOG_LEVEL": "WARNING",
           "REDIS_PREFIX": "bench:" + uuid.uuid4().hex[:8] + ":", "MESSAGE_KEYS": "k1:" + "A" * 43,
           "DATA_DIR": tempfile.mkdtemp(prefix="careline-bench-booking-")}
    servers = [spawn(env) for _ in range(2)]
    try:
        await asyncio.gather(*(wait_healthy(url, process) for url, process in servers))
        start = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        therapist = await seed(servers[0][0], start)
        timings = await availability_latency(servers[1][0], start)
        cold = await availability_latency(servers[1][0], start, cold=True)
        slowest, winners, codes = await race([url for url, _ in servers], start)
        await therapist.disconnect()
        p99 = statistics.quantiles(timings, n=100)[98]
        print(f"cores: {os.cpu_count()} (shared machine: figures are noisy)")
        print(f"availability:get 62 days, 300 bookings, {len(timings)} calls: "
              f"p50 {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms (target <= 30 ms)")
        print(f"availability:get cold (new range every call, one indexed query each): "
              f"p50 {statistics.median(cold):.1f} ms, p99 {statistics.quantiles(cold, n=100)[98]:.1f} ms")
        print(f"race: 50 clients on 2 processes: {winners} booking, {codes.count('conflict')} conflict, "
              f"slowest answer {slowest:.0f} ms (target <= 1000 ms)")
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())
