"""Fixtures: run the conformance app (careline's server + suite handlers) on a free port."""
from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from tests.conformance import server as suite_server

#: heartbeat slow enough that it never masks the behaviour under test
SLOW = {"ping_interval": 5.0, "ping_timeout": 5.0, "connect_timeout": 5.0}
#: the official suites' timing
FAST = {"ping_interval": 0.3, "ping_timeout": 0.2, "connect_timeout": 1.0}


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A running conformance server and helpers to talk raw Engine.IO to it."""

    def __init__(self, app: web.Application, port: int, http: aiohttp.ClientSession) -> None:
        """Keep the app, its port and a client session."""
        self.app, self.port, self.http = app, port, http
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str = "/engine.io/", **query: str) -> str:
        """URL of an endpoint with a query string."""
        return f"{self.base}{path}?" + "&".join(f"{k}={v}" for k, v in query.items())

    async def open_polling(self, path: str = "/engine.io/") -> tuple[str, dict]:
        """Open a long-polling session; return its sid and handshake."""
        async with self.http.get(self.url(path, EIO="4", transport="polling")) as resp:
            assert resp.status == 200
            text = await resp.text()
        assert text.startswith("0")
        handshake = json.loads(text[1:])
        return handshake["sid"], handshake

    async def get(self, sid: str, path: str = "/engine.io/") -> tuple[int, str]:
        """One poll; returns (status, body)."""
        async with self.http.get(self.url(path, EIO="4", transport="polling", sid=sid)) as resp:
            return resp.status, await resp.text()

    async def post(self, sid: str, body: str, path: str = "/engine.io/") -> tuple[int, str]:
        """One POST of an encoded payload; returns (status, body)."""
        url = self.url(path, EIO="4", transport="polling", sid=sid)
        async with self.http.post(url, data=body.encode()) as resp:
            return resp.status, await resp.text()

    async def ws(self, path: str = "/engine.io/", sid: str | None = None) -> aiohttp.ClientWebSocketResponse:
        """Open a raw WebSocket (handshake packet not consumed)."""
        query = {"EIO": "4", "transport": "websocket"} | ({"sid": sid} if sid else {})
        return await self.http.ws_connect(self.url(path, **query).replace("http", "ws", 1))

    @property
    def sio(self) -> Any:
        """The CarelineServer of the app."""
        return self.app[suite_server.SIO_KEY]

    @property
    def echo(self) -> Any:
        """The bare Engine.IO echo server of the app."""
        return self.app[suite_server.ECHO_KEY]


Serve = Callable[..., Awaitable[Running]]


@pytest_asyncio.fixture
async def serve(test_env: dict[str, str]) -> AsyncIterator[Serve]:
    """Factory: start the conformance app with given settings on a free port."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**settings: Any) -> Running:
        env = {k: v for k, v in test_env.items() if not k.startswith("_")}
        if settings.pop("redis", False):
            env["REDIS_URL"] = test_env["_REDIS_URL"]
        app = suite_server.make_app(settings, env)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        sessions.append(aiohttp.ClientSession())
        return Running(app, port, sessions[-1])

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()
    await asyncio.sleep(0)


@pytest_asyncio.fixture
async def slow(serve: Serve) -> Running:
    """Conformance server whose heartbeat never interferes with a test."""
    return await serve(**SLOW)


@pytest_asyncio.fixture
async def fast(serve: Serve) -> Running:
    """Conformance server with the official suites' heartbeat timing."""
    return await serve(**FAST)


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0, skip_pings: bool = True) -> Any:
    """Next data frame (str/bytes), or None once the WebSocket is closed."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return None
        if msg.type == aiohttp.WSMsgType.ERROR:
            return None
        if skip_pings and msg.data == "2":
            continue
        return msg.data


async def wait_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> list:
    """Read until the server closes the WebSocket (fails after `timeout`); returns frames seen."""
    seen = []
    while True:
        data = await recv(ws, timeout, skip_pings=False)
        if data is None:
            return seen
        seen.append(data)
