"""A stalled database (SIGSTOP): requests answer `unavailable` within the bound, none hangs, retries are safe."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stores.embedded import EmbeddedMongo
from tests.chat.helpers import catch_up
from tests.clients import SioClient
from tests.conftest import RunningServer, StartServer

STALL_SECONDS = 10.0
BOUND_SECONDS = 2.5  # DEPENDENCY_TIMEOUT_MS (2 s) plus the request's own work
SEND_EVERY = 0.05


@dataclass
class Sent:
    """One message:send: when it went, how long its ack took, and the ack."""

    request_id: str
    conversation_id: str
    at: float
    took: float
    ack: dict[str, Any]


async def _sender(client: SioClient, conversation_id: str, name: str, stop: asyncio.Event,
                  log: list[Sent]) -> None:
    count = 0
    while not stop.is_set():
        count += 1
        request_id = f"{name}-{count}"
        started = time.monotonic()
        ack = await client.call("message:send", {"conversationId": conversation_id, "text": request_id,
                                                 "requestId": request_id}, timeout=10)
        log.append(Sent(request_id, conversation_id, started, time.monotonic() - started, ack))
        await asyncio.sleep(SEND_EVERY)


async def _ready_status(server: RunningServer) -> tuple[int, float]:
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.get(server.url + "/ready") as response:
        return response.status, time.monotonic() - started


async def _arrange(server: RunningServer) -> list[tuple[SioClient, str, str]]:
    """Four writers in two conversations, each conversation used once so everything is cached and seeded."""
    writers = []
    for pair in range(2):
        alice = await server.client(f"a{pair}", "therapist")
        bob = await server.client(f"b{pair}", "client")
        conversation = await alice.ok("conversation:open", {"memberIds": [f"b{pair}"]})
        for client, name in ((alice, f"a{pair}"), (bob, f"b{pair}")):
            await client.ok("message:send", {"conversationId": conversation["id"], "text": f"{name}-warm",
                                             "requestId": f"{name}-warm"})
            writers.append((client, conversation["id"], name))
    return writers


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[EmbeddedMongo]:
    """A database of this test's own, to stop and resume (stopped after the servers that use it)."""
    server = EmbeddedMongo(tmp_path / "db")
    await server.start_async()
    yield server
    server.stop()


async def test_a_stalled_database_answers_unavailable_in_time_and_recovers(
        database: EmbeddedMongo, start_server: StartServer, test_env: dict[str, str]) -> None:
    server = await start_server(env={**test_env, "MONGODB_URI": database.uri + "&retryWrites=false"},
                                rate_limit_burst=1000, rate_limit_per_second=1000)
    writers = await _arrange(server)
    stop, log = asyncio.Event(), []
    tasks = [asyncio.create_task(_sender(c, cid, name, stop, log)) for c, cid, name in writers]
    await asyncio.sleep(1.0)
    pid = database.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stalled_at = time.monotonic()
    try:
        await asyncio.sleep(1.0)
        status, took = await _ready_status(server)
        assert status == 503 and took <= BOUND_SECONDS
        await asyncio.sleep(STALL_SECONDS - 1.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)
    _check_bounded(log, stalled_at, resumed_at)
    await _check_retries_are_safe(writers, log)


def _check_bounded(log: list[Sent], stalled_at: float, resumed_at: float) -> None:
    assert max(sent.took for sent in log) <= BOUND_SECONDS, max(sent.took for sent in log)
    codes = {("ok" if sent.ack["ok"] else sent.ack["error"]["code"]) for sent in log}
    assert codes == {"ok", "unavailable"}, codes
    refused = [sent for sent in log if not sent.ack["ok"]]
    assert all(sent.ack["error"]["details"] == {"dependency": "mongodb"} for sent in refused)
    assert len([sent for sent in refused if stalled_at <= sent.at < resumed_at]) >= 8
    after = [sent for sent in log if sent.at >= resumed_at + 1.0]
    assert after and all(sent.ack["ok"] for sent in after)  # within 1 s of SIGCONT every send succeeds
    first_ok = min(sent.at + sent.took for sent in log if sent.ack["ok"] and sent.at + sent.took >= resumed_at)
    assert first_ok - resumed_at <= 1.0


async def _check_retries_are_safe(writers: list[tuple[SioClient, str, str]], log: list[Sent]) -> None:
    """Send every refused message again with its requestId; each conversation then has each requestId once."""
    by_name = {name: client for client, _cid, name in writers}
    for sent in log:
        if not sent.ack["ok"]:
            client = by_name[sent.request_id.rsplit("-", 1)[0]]
            await client.ok("message:send", {"conversationId": sent.conversation_id, "text": sent.request_id,
                                             "requestId": sent.request_id})
    for client, conversation_id, _name in writers[::2]:
        texts = [item["text"] for item in await catch_up(client, conversation_id, attempts=30)]
        expected = {sent.request_id for sent in log if sent.conversation_id == conversation_id}
        assert sorted(texts) == sorted(set(texts))  # no duplicates
        assert expected <= set(texts)  # every request, first answered or retried, is stored once


