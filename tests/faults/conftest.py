"""careline as its own process on the embedded default (no MONGODB_URI, no Redis), and its database child."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from config import Config
from handlers.auth import mint_token
from stores.embedded import free_port
from tests.clients import SioClient
from tests.conftest import JWT_SECRET, MESSAGE_KEYS, ROOT, VAPID_KEY, wait_healthy


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found.extend(int(child) for child in listing.read().split())
    except OSError:  # it (or one of its threads) is gone
        pass
    return found


def cmdline(pid: int) -> str:
    """A process's command line, or "" once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Wait until `condition()` is true; False if it was not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


@dataclass
class EmbeddedCareline:
    """`python server.py` on the embedded default, with what a test needs to hurt it."""

    url: str
    process: subprocess.Popen[bytes]
    config: Config
    data_dir: Path

    def database_pid(self) -> int | None:
        """The SecantusDB child's pid (a child of the server process serving our storage path)."""
        for pid in children(self.process.pid):
            line = cmdline(pid)
            if "secantusd-py" in line and f"--storage-path {self.data_dir / 'db'}" in line:
                return pid
        return None

    def token(self, sub: str, role: str = "client") -> str:
        """A valid token for this server."""
        return mint_token(self.config, sub, role, sub.title(), 3600)

    async def client(self, sub: str, role: str = "client", namespace: str = "/chat") -> SioClient:
        """A connected python-socketio client (no reconnection: a dropped socket would show)."""
        client = SioClient(self.url, namespace)
        await client.connect(auth={"token": self.token(sub, role)})
        return client

    async def get(self, path: str) -> tuple[int, str]:
        """GET a REST path: (status, body)."""
        async with aiohttp.ClientSession() as session, session.get(self.url + path,
                                                                   timeout=aiohttp.ClientTimeout(total=10)) as answer:
            return answer.status, await answer.text()


@pytest.fixture
async def embedded_careline(tmp_path: Path) -> AsyncIterator[EmbeddedCareline]:
    """careline on the embedded default, its data under tmp_path; stopped (and its database gone) after the test."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "REDIS_URL", "MONGODB_DB"}}
    settings = {"JWT_SECRET": JWT_SECRET, "MESSAGE_KEYS": MESSAGE_KEYS, "VAPID_PRIVATE_KEY": VAPID_KEY,
                "DATA_DIR": str(data_dir), "HOST": "127.0.0.1", "PORT": str(free_port()), "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_BURST": "100000", "RATE_LIMIT_PER_SECOND": "100000"}
    env.update(settings)
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env)
    server = EmbeddedCareline(f"http://127.0.0.1:{settings['PORT']}", process, Config.from_env(settings), data_dir)
    try:
        await wait_healthy(server.url, process, timeout=60)
        yield server
    finally:
        database = server.database_pid()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if database is not None:
            await until(lambda: not cmdline(database), 15)
