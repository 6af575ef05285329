"""Test clients: python-socketio AsyncClient and the official JS client, both recording pushed events."""
from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

JS_DIR = Path(__file__).parent / "js"
DEFAULT_TIMEOUT = 5.0

Predicate = Callable[[Any], bool]


class EventLog:
    """Pushed events per name, awaitable."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._changed = asyncio.Condition()

    async def add(self, event: str, data: Any) -> None:
        """Record one pushed event."""
        async with self._changed:
            self.events[event].append(data)
            self._changed.notify_all()

    async def expect(self, event: str, predicate: Predicate | None = None, timeout: float = DEFAULT_TIMEOUT,
                     consume: bool = True) -> Any:
        """Wait for (and by default remove) the first `event` matching `predicate`."""
        def find() -> int | None:
            for index, data in enumerate(self.events[event]):
                if predicate is None or predicate(data):
                    return index
            return None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), timeout)
            index = find()
            assert index is not None
            return self.events[event].pop(index) if consume else self.events[event][index]

    async def absent(self, event: str, within: float = 0.5, predicate: Predicate | None = None) -> None:
        """Assert that no matching `event` arrives within `within` seconds."""
        await asyncio.sleep(within)
        matching = [d for d in self.events[event] if predicate is None or predicate(d)]
        assert not matching, f"unexpected {event}: {matching}"


class SioClient(EventLog):
    """A python-socketio AsyncClient on one namespace."""

    def __init__(self, url: str, namespace: str) -> None:
        super().__init__()
        self.url, self.namespace = url, namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.connect_error: Any = None
        self.sio.on("*", self._on_any, namespace=namespace)
        self.sio.on("connect_error", self._on_connect_error, namespace=namespace)
        self.sio.on("disconnect", self._on_disconnect, namespace=namespace)

    async def _on_any(self, event: str, *args: Any) -> None:
        await self.add(event, args[0] if args else None)

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def _on_disconnect(self, *args: Any) -> None:
        await self.add("disconnect", args[0] if args else None)

    async def connect(self, auth: Any = None, headers: dict[str, str] | None = None,
                      transports: list[str] | None = None, query: str = "") -> None:
        """Connect; raises socketio.exceptions.ConnectionError when refused."""
        await self.sio.connect(self.url + query, namespaces=[self.namespace], auth=auth, headers=headers or {},
                               transports=transports or ["websocket"], wait_timeout=5)

    async def call(self, event: str, data: Any = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Emit a request and return its ack."""
        args = {} if data is None else data
        return await self.sio.call(event, args, namespace=self.namespace, timeout=timeout)

    async def ok(self, event: str, data: Any = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Emit a request, assert it succeeded and return its data."""
        ack = await self.call(event, data, timeout)
        assert ack.get("ok") is True, f"{event} failed: {ack}"
        return ack["data"]

    async def error(self, event: str, data: Any = None, code: str | None = None) -> dict[str, Any]:
        """Emit a request, assert it failed (with `code`, if given) and return the error object."""
        ack = await self.call(event, data)
        assert ack.get("ok") is False, f"{event} unexpectedly succeeded: {ack}"
        if code is not None:
            assert ack["error"]["code"] == code, ack
        return ack["error"]

    @property
    def connected(self) -> bool:
        """True while the namespace is connected."""
        return self.sio.connected and self.namespace in self.sio.namespaces

    async def disconnect(self) -> None:
        """Close the connection."""
        await self.sio.disconnect()


class JsDriver(EventLog):
    """One Node process running tests/js/driver.mjs; each named socket is an official socket.io-client."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the Node process."""
        self._proc = await asyncio.create_subprocess_exec(
            "node", str(JS_DIR / "driver.mjs"), cwd=JS_DIR, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc and self._proc.stdout
        async for line in self._proc.stdout:
            message = json.loads(line)
            if "id" in message:
                self._pending.pop(message["id"]).set_result(message)
            else:
                await self.add(f"{message['socket']}:{message['event']}", message["data"])

    async def command(self, op: str, timeout: float = 10.0, **fields: Any) -> Any:
        """Send one command and wait for its reply."""
        assert self._proc and self._proc.stdin
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self._proc.stdin.write((json.dumps({"id": ident, "op": op, **fields}) + "\n").encode())
        await self._proc.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def connect(self, socket: str, url: str, namespace: str, **options: Any) -> Any:
        """Connect a named socket; returns `{ok, transport}` or `{ok: false, error: {message, data}}`."""
        return await self.command("connect", socket=socket, url=url, namespace=namespace, **options)

    async def emit(self, socket: str, event: str, data: Any = None) -> Any:
        """Emit with an ack and return the ack."""
        reply = await self.command("emit", socket=socket, event=event, data={} if data is None else data)
        assert "ack" in reply, reply
        return reply["ack"]

    async def stop(self) -> None:
        """Close every socket and end the process."""
        if self._proc is None:
            return
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 5)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        if self._reader:
            self._reader.cancel()


class StaticPages:
    """Test pages served from their own origin (a free loopback port), with the official client bundle."""

    bundle = JS_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []

    async def serve(self, page: Path) -> str:
        """Serve `page` at `/` and the client at `/socket.io.min.js`; returns the origin."""
        async def index(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(page)

        async def client(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(self.bundle)

        app = web.Application()
        app.router.add_get("/", index)
        app.router.add_get("/socket.io.min.js", client)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def close(self) -> None:
        """Stop every page server."""
        for runner in self._runners:
            await runner.cleanup()
