"""Faults of the embedded database, on real processes: `kill -9` of the SecantusDB child under load.

careline runs as `python server.py` on the embedded default; the test kills its database child with
SIGKILL while 8 chat writers, 2 booking clients and a notification reader are busy. The supervisor
restarts the child (same port, same storage path), careline itself never stops, every request answers
`ok` or `unavailable` within a bound, and every write that was acknowledged `ok` is stored.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from clock import iso
from tests.booking.helpers import availability
from tests.clients import SioClient
from tests.faults.conftest import EmbeddedCareline, cmdline, until

WRITERS = 8
IN_FLIGHT = 2            # sends awaiting their ack per writer socket
ACK_BOUND = 12.0         # no ack may take longer (a request waits at most the client's server selection timeout)
KILL_AT = 500            # acknowledged writes before the kill (or after 15 s)
MIN_ACKED = 1000         # acknowledged writes in all (traffic goes on after the restart until there are 10 % more)
AFTER_BACK = 2.0         # seconds of traffic at least after the database answers again


@dataclass
class Tally:
    """What the clients saw."""

    messages: dict[str, dict[str, str]] = field(default_factory=dict)   # conversation -> message id -> requestId
    bookings: dict[str, str] = field(default_factory=dict)              # booking id -> requestId
    unavailable: dict[str, int] = field(default_factory=dict)           # event -> `unavailable` acks
    reads: int = 0
    slowest: float = 0.0
    first_ok_after_kill: float | None = None
    killed_at: float | None = None

    def answered(self, event: str, ack: dict[str, Any], took: float) -> bool:
        """Record one ack; True when it is `ok`. Anything but `ok` or `unavailable` fails the test."""
        self.slowest = max(self.slowest, took)
        if ack.get("ok") is True:
            if self.killed_at is not None and self.first_ok_after_kill is None and event == "message:send":
                self.first_ok_after_kill = time.monotonic()
            return True
        assert ack.get("ok") is False and ack["error"]["code"] == "unavailable", f"{event}: {ack}"
        self.unavailable[event] = self.unavailable.get(event, 0) + 1
        return False

    @property
    def acknowledged(self) -> int:
        return sum(len(ids) for ids in self.messages.values()) + len(self.bookings)


async def _call(client: SioClient, event: str, data: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    ack = await client.call(event, data, timeout=ACK_BOUND)  # TimeoutError here: an ack hung past the bound
    return ack, time.monotonic() - started


async def _chat_writer(client: SioClient, conversation: str, name: str, tally: Tally, stop: asyncio.Event) -> None:
    """Send until stopped; an `unavailable` send is sent again with the same requestId, as a client would."""
    stored = tally.messages.setdefault(conversation, {})
    number = 0
    while not stop.is_set():
        request_id = f"{name}-{number}"
        while True:
            ack, took = await _call(client, "message:send", {"conversationId": conversation, "requestId": request_id,
                                                             "text": f"message {number} from {name}"})
            if tally.answered("message:send", ack, took):
                assert ack["data"]["conversationId"] == conversation
                stored[ack["data"]["id"]] = request_id
                break
            if stop.is_set():
                return
            await asyncio.sleep(0.05)
        number += 1


async def _booker(client: SioClient, therapist_id: str, first: datetime, name: str, tally: Tally,
                  stop: asyncio.Event) -> None:
    """One booking per second (booking:create's own rate limit), each at its own hour."""
    number = 0
    while not stop.is_set():
        request_id = f"{name}-{number}"
        ack, took = await _call(client, "booking:create", {"therapistId": therapist_id, "requestId": request_id,
                                                           "start": iso(first + timedelta(hours=number))})
        if tally.answered("booking:create", ack, took):
            tally.bookings[ack["data"]["id"]] = request_id
            number += 1
        await asyncio.sleep(1.0)


async def _reader(client: SioClient, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        ack, took = await _call(client, "notification:unread-count", {})
        tally.answered("notification:unread-count", ack, took)
        tally.reads += 1
        await asyncio.sleep(0.1)


async def _stored_message_ids(client: SioClient, conversation: str) -> set[str]:
    """Every message of a conversation, paging down from the newest."""
    page = await client.ok("message:history", {"conversationId": conversation, "limit": 100}, timeout=30)
    found = {message["id"] for message in page["items"]}
    while page["hasMore"] and page["items"]:
        before = page["items"][0]["seq"]
        page = await client.ok("message:history", {"conversationId": conversation, "beforeSeq": before, "limit": 100},
                               timeout=30)
        found |= {message["id"] for message in page["items"]}
    return found


async def _until_ready(server: EmbeddedCareline, timeout: float) -> tuple[float, list[str]]:
    """Poll /ready until it has said 503 and then 200 again: (when, the reasons it gave while not ready)."""
    reasons: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await server.get("/ready")
        if status == 200 and reasons:
            return time.monotonic(), reasons
        if status == 200:
            await asyncio.sleep(0.05)
            continue
        assert status == 503, body
        reasons.append(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"/ready did not return to 200 within {timeout} s: {reasons[-3:]}")


def _restarts(metrics: str) -> float:
    found = re.search(r"^careline_embedded_db_restarts_total (\S+)$", metrics, re.MULTILINE)
    assert found, "no careline_embedded_db_restarts_total in /metrics"
    return float(found.group(1))


async def test_kill_9_of_the_embedded_database_under_load_loses_no_acknowledged_write(
        embedded_careline: EmbeddedCareline) -> None:
    server = embedded_careline
    database = server.database_pid()
    assert database is not None
    peers = [await server.client(f"peer{i}") for i in range(WRITERS)]  # members must have connected once
    writers = [await server.client(f"writer{i}") for i in range(WRITERS)]
    conversations = [(await writer.ok("conversation:open", {"memberIds": [f"peer{i}"]}))["id"]
                     for i, writer in enumerate(writers)]
    therapist = await server.client("therapist1", "therapist", "/booking")
    await therapist.ok("availability:set", availability())
    bookers = [await server.client(f"booker{i}", "client", "/booking") for i in range(2)]
    reader = await server.client("therapist1", "therapist", "/notifications")
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    tally, stop = Tally(), asyncio.Event()
    tasks = [asyncio.create_task(_chat_writer(writer, conversation, f"w{i}x{lane}", tally, stop))
             for i, (writer, conversation) in enumerate(zip(writers, conversations, strict=True))
             for lane in range(IN_FLIGHT)]
    tasks += [asyncio.create_task(_booker(booker, "therapist1", tomorrow + timedelta(days=60 * i), f"b{i}", tally,
                                          stop)) for i, booker in enumerate(bookers)]
    tasks.append(asyncio.create_task(_reader(reader, tally, stop)))
    try:
        await until(lambda: tally.acknowledged >= KILL_AT, 15)
        acked_before_kill = tally.acknowledged
        os.kill(database, signal.SIGKILL)
        tally.killed_at = time.monotonic()
        back_at, reasons = await _until_ready(server, timeout=30)
        await until(lambda: tally.first_ok_after_kill is not None, 10)
        await asyncio.sleep(AFTER_BACK)
        await until(lambda: tally.acknowledged >= MIN_ACKED * 1.1, 20)
    finally:
        stop.set()
        await asyncio.gather(*tasks)  # re-raises a failed assertion or an ack past its bound

    assert server.process.poll() is None, "careline exited"
    restarted = server.database_pid()
    assert restarted is not None and restarted != database
    assert any("restarting" in reason for reason in reasons), reasons
    assert tally.first_ok_after_kill is not None

    missing = {}
    for writer, conversation in zip(writers, conversations, strict=True):
        stored = await _stored_message_ids(writer, conversation)
        lost = set(tally.messages[conversation]) - stored
        if lost:
            missing[conversation] = sorted(tally.messages[conversation][message] for message in lost)
    lost_bookings = []
    for booking_id in tally.bookings:
        ack = await bookers[0].call("booking:get", {"bookingId": booking_id})
        if not ack["ok"]:
            ack = await bookers[1].call("booking:get", {"bookingId": booking_id})
        if not ack["ok"]:
            lost_bookings.append(tally.bookings[booking_id])
    messages = sum(len(ids) for ids in tally.messages.values())
    print(f"\nacknowledged: {messages} messages ({acked_before_kill} writes before the kill), "
          f"{len(tally.bookings)} bookings; unavailable acks: {tally.unavailable}; reads: {tally.reads}; "
          f"slowest ack {tally.slowest:.2f} s; /ready back {back_at - tally.killed_at:.2f} s and first ok send "
          f"{tally.first_ok_after_kill - tally.killed_at:.2f} s after the kill; missing: "
          f"{sum(map(len, missing.values()))} messages, {len(lost_bookings)} bookings")
    assert not missing and not lost_bookings, (missing, lost_bookings)
    assert tally.acknowledged >= MIN_ACKED
    assert tally.bookings, "no booking was acknowledged"
    status, metrics = await server.get("/metrics")
    assert status == 200 and _restarts(metrics) >= 1
    for client in [*peers, *writers, therapist, *bookers, reader]:
        assert client.connected  # careline's sockets never noticed
        await client.disconnect()


async def test_ready_reports_the_restart_and_recovers_without_restarting_careline(
        embedded_careline: EmbeddedCareline) -> None:
    server = embedded_careline
    status, body = await server.get("/ready")
    assert status == 200, body
    status, metrics = await server.get("/metrics")
    assert _restarts(metrics) == 0
    database = server.database_pid()
    assert database is not None
    os.kill(database, signal.SIGKILL)
    killed_at = time.monotonic()
    back_at, reasons = await _until_ready(server, timeout=30)
    print(f"\n/ready back {back_at - killed_at:.2f} s after the kill; said: {sorted(set(reasons))}")
    assert all('"mongodb": "unreachable (' in reason for reason in reasons), reasons
    assert any("restarting, attempt 1" in reason for reason in reasons), reasons
    assert server.process.poll() is None
    restarted = server.database_pid()
    assert restarted is not None and restarted != database
    status, metrics = await server.get("/metrics")
    assert status == 200 and _restarts(metrics) >= 1
    client = await server.client("u1")  # and the data path works again
    peer = await server.client("u2")
    conversation = await client.ok("conversation:open", {"memberIds": ["u2"]})
    sent = await client.ok("message:send", {"conversationId": conversation["id"], "requestId": "r1", "text": "hi"})
    assert sent["seq"] >= 1
    await client.disconnect()
    await peer.disconnect()
    server.process.kill()  # the restarted child still dies with careline (spawned from the loop's thread)
    server.process.wait()
    assert await until(lambda: not cmdline(restarted), 15)
