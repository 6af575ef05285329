"""Real peers for every test: SecantusDB (or MONGODB_URI), Redis, careline servers, official clients."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from clock import utcnow
from config import Config
from handlers.auth import mint_token
from handlers.billing.feature import BillingFeature
from handlers.booking.feature import BookingFeature
from handlers.chat.feature import ChatFeature
from handlers.feature import Shared
from handlers.meetings.feature import MeetingsFeature
from handlers.notifications.feature import NotificationsFeature
from handlers.worksheets.feature import WorksheetsFeature
from rest.app_keys import CONFIG, HANDLERS, SHARED
from stores.embedded import EmbeddedMongo, free_port
from tests.clients import JS_DIR, JsDriver, SioClient, StaticPages

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "test-secret-" + "x" * 32
MESSAGE_KEYS = "k1:" + "A" * 43
VAPID_KEY = "8-kdg5yY6RUpxUBG1UOsF2zL8IlcWGC7GowUaoBcsAE"
PINNED_TIME = "CARELINE_TEST_TIME_OF_DAY"  # "HH:MM": every test server's clock starts at that UTC time of day


def _pinned_offset() -> timedelta:
    """How far the test clock runs ahead of the real one: to tomorrow's PINNED_TIME when that is set."""
    pinned = os.environ.get(PINNED_TIME)
    if not pinned:
        return timedelta(0)
    hours, minutes = (int(part) for part in pinned.split(":"))
    real = utcnow()
    start = datetime(real.year, real.month, real.day, hours, minutes, tzinfo=timezone.utc) + timedelta(days=1)
    return start - real


_OFFSET = _pinned_offset()


def test_now() -> datetime:
    """"Now" for tests and the servers they start: the real time, or the pinned time of day plus time elapsed."""
    return utcnow() + _OFFSET


class TestClock:
    """A server's clock: `test_now()`, until a test gives it another source of "now"."""

    def __init__(self) -> None:
        self.source: Callable[[], datetime] = test_now

    def __call__(self) -> datetime:
        return self.source()


# -- session-wide peers ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """MONGODB_URI when set, else one SecantusDB for the whole run (each test uses its own database)."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = EmbeddedMongo(":memory:")
    server.start()
    yield server.uri + "&retryWrites=false"  # as server.py connects to its own embedded server
    server.stop()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set, else 127.0.0.1:6379, else a redis-server started for this run."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.exit("Redis is required: install it (apt-get install redis-server) or set REDIS_URL", returncode=3)
    port = free_port()
    process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            process.kill()
            pytest.exit("redis-server did not start", returncode=3)
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(5)


@pytest.fixture
async def static_pages(js_ready: None) -> AsyncIterator[StaticPages]:
    """Test pages on their own origins (see StaticPages), stopped after the test."""
    pages = StaticPages()
    yield pages
    await pages.close()


@pytest.fixture(scope="session")
def js_ready() -> None:
    """The official client must be installed (the test command runs `npm ci` in tests/js)."""
    if not (JS_DIR / "node_modules" / "socket.io-client").exists():
        pytest.exit("tests/js/node_modules is missing: run `npm ci --prefix tests/js`", returncode=3)


# -- per-test configuration and servers -------------------------------------------------------------

@pytest.fixture
def test_env(mongo_uri: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a careline server private to this test (own database and Redis prefix)."""
    ident = uuid.uuid4().hex[:12]
    return {
        "MONGODB_URI": mongo_uri, "MONGODB_DB": f"t_{ident}", "REDIS_PREFIX": f"t:{ident}:",
        "JWT_SECRET": JWT_SECRET, "MESSAGE_KEYS": MESSAGE_KEYS, "VAPID_PRIVATE_KEY": VAPID_KEY,
        "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING", "_REDIS_URL": redis_url,
        # a test's servers share its event loop with its clients, on a machine running other tests: a slow turn
        # must not refuse edits (tests/worksheets turns it on where it is tested)
        "WORKSHEET_SHED_LAG_MS": "0",
    }


def _config(env: dict[str, str], redis: bool, **overrides: Any) -> Config:
    merged = {k: v for k, v in env.items() if not k.startswith("_")}
    if redis:
        merged["REDIS_URL"] = env["_REDIS_URL"]
    merged.update({key.upper(): str(value) for key, value in overrides.items()})
    return Config.from_env(merged)


@dataclass
class RunningServer:
    """A careline app serving on a free loopback port inside the test's event loop."""

    url: str
    app: web.Application
    runner: web.AppRunner
    clock: TestClock
    clients: list[SioClient] = field(default_factory=list)

    @property
    def config(self) -> Config:
        """The app's configuration."""
        return self.app[CONFIG]

    @property
    def shared(self) -> Shared:
        """The app-wide resources every feature was built from (bus, users, sockets, ...)."""
        return self.app[SHARED]

    @property
    def chat(self) -> ChatFeature:
        """The chat feature's handlers."""
        return self.app[HANDLERS]["/chat"]  # type: ignore[return-value]

    @property
    def booking(self) -> BookingFeature:
        """The booking feature's handlers."""
        return self.app[HANDLERS]["/booking"]  # type: ignore[return-value]

    @property
    def meetings(self) -> MeetingsFeature:
        """The meetings feature's handlers."""
        return self.app[HANDLERS]["/meetings"]  # type: ignore[return-value]

    @property
    def billing(self) -> BillingFeature:
        """The billing feature's handlers."""
        return self.app[HANDLERS]["/billing"]  # type: ignore[return-value]

    @property
    def notifications(self) -> NotificationsFeature:
        """The notifications feature's handlers."""
        return self.app[HANDLERS]["/notifications"]  # type: ignore[return-value]

    @property
    def worksheets(self) -> WorksheetsFeature:
        """The worksheets feature's handlers."""
        return self.app[HANDLERS]["/worksheets"]  # type: ignore[return-value]

    def token(self, sub: str, role: str = "client", name: str | None = None, ttl: int = 3600,
              email: str | None = None) -> str:
        """A valid token for this server."""
        return mint_token(self.config, sub, role, name or sub.title(), ttl, email)

    async def client(self, sub: str, role: str = "client", namespace: str = "/chat", *, name: str | None = None,
                     transports: list[str] | None = None, ttl: int = 3600, email: str | None = None) -> SioClient:
        """A connected python-socketio client for user `sub`."""
        client = SioClient(self.url, namespace)
        await client.connect(auth={"token": self.token(sub, role, name, ttl, email)}, transports=transports)
        self.clients.append(client)
        return client

    async def stop(self) -> None:
        """Disconnect clients and shut the app down."""
        for client in self.clients:
            if client.sio.connected:
                await client.disconnect()
        await self.runner.cleanup()


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(test_env: dict[str, str]) -> AsyncIterator[StartServer]:
    """Factory: start a careline app (`redis=True` for the Redis manager); all are stopped after the test."""
    running: list[RunningServer] = []

    async def start(redis: bool = False, env: dict[str, str] | None = None, **overrides: Any) -> RunningServer:
        config = _config(env or test_env, redis, **overrides)
        from server import create_app

        clock = TestClock()
        app = create_app(config, clock)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        server = RunningServer(f"http://127.0.0.1:{port}", app, runner, clock)
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    """One careline app with the in-process manager."""
    return await start_server()


@pytest.fixture
async def js(js_ready: None) -> AsyncIterator[JsDriver]:
    """The official socket.io-client, driven from the test."""
    driver = JsDriver()
    await driver.start()
    yield driver
    await driver.stop()


# -- separate server processes ----------------------------------------------------------------------

@dataclass
class ServerProcess:
    """`python server.py` running as its own process."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]


async def wait_healthy(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Poll /health until it answers 200."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                async with session.get(url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await _sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@pytest.fixture
async def spawn_server(test_env: dict[str, str]) -> AsyncIterator[Callable[..., Awaitable[ServerProcess]]]:
    """Factory: run careline as separate processes (sharing this test's database and Redis by default)."""
    processes: list[ServerProcess] = []

    async def spawn(redis: bool = True, **overrides: str) -> ServerProcess:
        env = {k: v for k, v in test_env.items() if not k.startswith("_")}
        if redis:
            env["REDIS_URL"] = test_env["_REDIS_URL"]
        env.update({key.upper(): str(value) for key, value in overrides.items()})
        env["PORT"] = env.get("PORT") or str(free_port())
        env["HOST"] = "127.0.0.1"
        full_env = {**os.environ, **env}
        full_env.pop("MONGODB_URI", None) if "MONGODB_URI" not in env else None
        process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=full_env)
        spawned = ServerProcess(f"http://127.0.0.1:{env['PORT']}", process, env)
        processes.append(spawned)
        await wait_healthy(spawned.url, process)
        return spawned

    yield spawn
    for spawned in processes:
        if spawned.process.poll() is None:
            spawned.process.terminate()
            try:
                spawned.process.wait(15)
            except subprocess.TimeoutExpired:
                spawned.process.kill()
