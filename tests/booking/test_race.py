"""Races across server processes: exactly one booking wins; open slots update live on every process."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from clock import iso
from handlers.auth import mint_token
from rest.app_keys import MONGO_DB
from tests.booking.helpers import NS, availability, later, slots
from tests.clients import SioClient
from tests.conftest import RunningServer, StartServer


async def _connect(url: str, token: str) -> SioClient:
    client = SioClient(url, NS)
    await client.connect(auth={"token": token})
    return client


async def test_fifty_clients_on_two_processes_race_for_overlapping_time(spawn_server, server: RunningServer) -> None:  # type: ignore[no-untyped-def]
    first, second = await spawn_server(), await spawn_server()
    token = lambda sub, role: mint_token(server.config, sub, role, sub, 600)  # noqa: E731 - same secret
    t = await _connect(first.url, token("t1", "therapist"))
    await t.ok("availability:set", availability())
    clients = await asyncio.gather(*(_connect((first, second)[i % 2].url, token(f"c{i}", "client"))
                                     for i in range(50)))
    base = later(48)
    try:
        started = time.perf_counter()
        acks = await asyncio.gather(*(client.call("booking:create", {
            "therapistId": "t1", "start": iso(base + timedelta(minutes=5 * (i % 10))), "requestId": f"r{i}"})
            for i, client in enumerate(clients)))
        elapsed = time.perf_counter() - started
        winners = [ack["data"] for ack in acks if ack["ok"]]
        assert len(winners) == 1, acks
        assert sorted(ack["error"]["code"] for ack in acks if not ack["ok"]) == ["conflict"] * 49
        assert elapsed < 10, elapsed
        db = server.app[MONGO_DB]
        assert await db["bookings"].count_documents({}) == 1
        assert await db["booking_claims"].count_documents({"bookingId": {"$ne": winners[0]["id"]}}) == 0
        open_now = await slots(t, "t1", base - timedelta(hours=1), base + timedelta(hours=2))
        held_from, held_to = winners[0]["start"], winners[0]["end"]
        assert open_now and not any(held_from <= s < held_to for s in open_now)
    finally:
        await asyncio.gather(t.disconnect(), *(c.disconnect() for c in clients))


async def test_availability_updates_reach_a_subscriber_on_the_other_process(start_server: StartServer) -> None:
    first, second = await start_server(redis=True), await start_server(redis=True)
    watcher = await first.client("c9", "client", NS)
    await watcher.ok("availability:subscribe", {"therapistId": "t1"})
    t = await second.client("t1", "therapist", NS)
    await t.ok("availability:set", availability())
    await watcher.expect("availability:updated", lambda e: e["therapistId"] == "t1")
    client = await second.client("c1", "client", NS)
    start = later(30)
    sent = time.perf_counter()
    booking = await client.ok("booking:create", {"therapistId": "t1", "start": iso(start), "requestId": "r"})
    update = await watcher.expect("availability:updated", timeout=2)
    latency = time.perf_counter() - sent
    assert update["from"] <= booking["start"] and update["to"] >= booking["end"], update
    assert latency < 1.0
    await t.ok("booking:decline", {"bookingId": booking["id"]})
    await watcher.expect("availability:updated")
    await watcher.ok("availability:unsubscribe", {"therapistId": "t1"})
    await t.ok("availability:set", availability(bufferMinutes=5))
    await watcher.absent("availability:updated", within=0.3)
