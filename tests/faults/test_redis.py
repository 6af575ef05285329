"""Redis killed and started again under two server processes: chat keeps writing meanwhile, delivery between
them resumes within 5 s of Redis answering again, and nothing acknowledged is lost or stored twice."""
from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from config import Config
from handlers.auth import mint_token
from stores.embedded import free_port
from tests.chat.helpers import catch_up
from tests.clients import SioClient
from tests.conftest import ServerProcess

OUTAGE_SECONDS = 8.0  # long enough that upstream's listener would be waiting 8 s more before its next try
RESUME_WITHIN = 5.0


class RedisProcess:
    """A redis-server of this test's own on a fixed port, to kill and start again."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.options = options  # more redis-server options (e.g. --requirepass)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable, "redis-server is required"
        self.process = subprocess.Popen([executable, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", *self.options],
                                        stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up (a password may be required)
    except OSError:
        return False


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    redis = RedisProcess()
    redis.start()
    yield redis
    redis.kill()


async def _connect(process: ServerProcess, user: str, role: str) -> SioClient:
    client = SioClient(process.url, "/chat")
    await client.connect(auth={"token": mint_token(Config.from_env(process.env), user, role, user)})
    return client


async def _send(client: SioClient, conversation_id: str, request_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await client.call("message:send", {"conversationId": conversation_id,
                                                               "text": request_id, "requestId": request_id},
                                               timeout=5)
    return result




async def test_delivery_between_processes_resumes_after_redis_comes_back(
        private_redis: RedisProcess, spawn_server) -> None:  # type: ignore[no-untyped-def]
    first = await spawn_server(redis=True, redis_url=private_redis.url)
    second = await spawn_server(redis=True, redis_url=private_redis.url)
    alice, bob = await _connect(first, "alice", "therapist"), await _connect(second, "bob", "client")
    conversation = (await alice.ok("conversation:open", {"memberIds": ["bob"]}))["id"]
    for member in (alice, bob):
        await member.ok("conversation:join", {"conversationId": conversation})
    acked = []
    assert (await _send(alice, conversation, "before"))["ok"]
    acked.append("before")
    assert (await bob.expect("message:created"))["text"] == "before"

    private_redis.kill()
    page = await bob.ok("message:history", {"conversationId": conversation})  # MongoDB alone still serves
    assert [item["text"] for item in page["items"]] == ["before"]
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    count, during = 0, []
    while time.monotonic() < outage_ends:  # both processes write the same conversation, seqs taken locally
        for sender in (alice, bob):
            count += 1
            started = time.monotonic()
            ack = await _send(sender, conversation, f"outage-{count}")
            assert time.monotonic() - started <= 2.5
            during.append(ack["ok"])
            if ack["ok"]:
                acked.append(f"outage-{count}")
            else:
                assert ack["error"]["code"] == "unavailable", ack
        await asyncio.sleep(0.3)
    assert sum(during) >= len(during) - 2, during  # chat keeps writing without Redis

    private_redis.start()
    back = time.monotonic()
    resumed = None
    while time.monotonic() - back < RESUME_WITHIN + 5:
        count += 1
        ack = await _send(alice, conversation, f"after-{count}")
        if ack["ok"]:
            acked.append(f"after-{count}")
        try:
            await bob.expect("message:created", lambda m, n=count: m["text"] == f"after-{n}", timeout=0.3)
            resumed = time.monotonic() - back
            break
        except TimeoutError:
            continue
    assert resumed is not None and resumed <= RESUME_WITHIN, resumed
    stored = [item["text"] for item in await catch_up(bob, conversation)]
    assert set(acked) <= set(stored) and len(stored) == len(set(stored))


async def test_a_burst_beyond_the_pool_waits_for_a_connection_instead_of_failing(
        private_redis: RedisProcess) -> None:
    """More commands at once than the pool has connections: the rest wait for a free one (redis-py's default
    pool fails them at once with MaxConnectionsError, a ConnectionError callers take for an outage)."""
    from stores.redis import POOL_SIZE, connect

    client = connect(private_redis.url)
    try:
        waits = [client.blpop([f"nothing:{n}"], timeout=0.2) for n in range(POOL_SIZE + 50)]
        assert await asyncio.gather(*waits) == [None] * (POOL_SIZE + 50)
    finally:
        await client.aclose()
