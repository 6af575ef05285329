"""Protocol fixes for the Engine.IO server: request validation, handshake, POST handling (docs/protocol.md)."""
from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import engineio
from engineio import exceptions, packet

from config import Config
from realtime.engine.memory import ReleaseAfterCloses
from realtime.engine.session import CarelineSocket
from realtime.engine.websocket import (
    UncompressedWebSocket,
    is_websocket_request,
    refuse_websocket,
)
from realtime.engine.wheel import TimerWheel

#: methods the Engine.IO endpoint understands; anything else is a 400
ALLOWED_METHODS = ("GET", "POST", "OPTIONS")


class CarelineEngine(engineio.AsyncServer):
    """python-engineio's AsyncServer with careline's protocol fixes (see docs/protocol.md)."""

    socket_class = CarelineSocket
    output_backlog_limit = Config.socket_backlog_max_bytes  # bytes a paused reader may fall behind before it is dropped

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the server; on aiohttp, WebSockets are served without permessage-deflate."""
        super().__init__(*args, **kwargs)
        if self.async_mode == "aiohttp":
            self._async: dict[str, Any] = dict(self._async, websocket=UncompressedWebSocket)
        self._heartbeats: TimerWheel[CarelineSocket] | None = None
        self.released = ReleaseAfterCloses()  # malloc_trim after a wave of closes (realtime/engine/memory.py)

    @property
    def heartbeats(self) -> TimerWheel[CarelineSocket]:
        """Every session's next PING or PONG deadline, on one loop timer (a twentieth of the shorter period
        late at most, between 5 ms and 0.5 s)."""
        if self._heartbeats is None:
            tick = min(0.5, max(0.005, min(self.ping_interval, self.ping_timeout) / 20))
            self._heartbeats = TimerWheel(tick, CarelineSocket.heartbeat_due)
        return self._heartbeats

    def attach(self, app: Any, engineio_path: str = "engine.io") -> None:
        """Attach, also routing other HTTP methods here so they get a protocol 400, not a 405."""
        super().attach(app, engineio_path)
        if self.async_mode == "aiohttp":
            app.router.add_route("*", f"/{engineio_path.strip('/')}/", self.handle_request)

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Reject what the protocol forbids; open a new WebSocket session here, let python-engineio handle the rest.

        A WebSocket lives inside this call for as long as it is open, so what its frame holds is held per
        connection: one environ (cleared once the WebSocket runs), no parsed query, no upstream frame.
        """
        environ = await self._environ(*args, **kwargs)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        early = await self._precheck(environ, query)
        if early is not None:
            return early
        if self._opens_websocket(environ, query):
            del query
            return await self._handle_connect(environ, "websocket")
        del environ, query
        return await super().handle_request(*args, **kwargs)

    def _opens_websocket(self, environ: dict[str, Any], query: dict[str, list[str]]) -> bool:
        """True for a valid request opening a session on the WebSocket transport (what upstream would accept)."""
        return (environ["REQUEST_METHOD"] == "GET" and "sid" not in query and "j" not in query
                and query.get("transport") == ["websocket"] and "websocket" in self.transports
                and query.get("EIO") == ["4"] and environ.get("HTTP_UPGRADE", "").lower() == "websocket"
                and not self._origin_rejected(environ))

    async def _environ(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Build the WSGI-style environ for a request (cheap, done again by the base class)."""
        environ = self._async["translate_request"](*args, **kwargs)
        if asyncio.iscoroutine(environ):
            environ = await environ
        return environ

    async def _precheck(self, environ: dict[str, Any], query: dict[str, list[str]]) -> Any:
        """Return a response for requests that must not reach the stock handler, else None."""
        method = environ["REQUEST_METHOD"]
        if method not in ALLOWED_METHODS:
            return await self._make_response(self._bad_request("Bad request method"), environ)
        if method == "OPTIONS":
            return None
        if "transport" not in query:
            return await self._make_response(self._bad_request("Missing transport"), environ)
        sid = query.get("sid", [None])[0]
        socket = self.sockets.get(sid) if sid else None
        if socket is None or socket.closed or self._origin_rejected(environ):
            return None
        if not await socket.check_ping_timeout():
            return await self._make_response(self._bad_request(f"Invalid session {sid}"), environ)
        if socket.upgraded and is_websocket_request(environ):
            return await refuse_websocket(self, environ)
        if method == "POST" and socket.connected and not socket.upgraded and "j" not in query:
            return await self._make_response(await self._handle_post(socket, environ), environ)
        return None

    def _origin_rejected(self, environ: dict[str, Any]) -> bool:
        """True if the stock CORS check will reject this request's Origin."""
        origin = environ.get("HTTP_ORIGIN")
        if self.cors_allowed_origins == [] or not origin:
            return False
        allowed = self._cors_allowed_origins(environ)
        return allowed is not None and origin not in allowed

    async def _handle_post(self, socket: CarelineSocket, environ: dict[str, Any]) -> dict[str, Any]:
        """Deliver a POSTed payload; a bad or oversized payload closes the session with a 400."""
        try:
            await socket.handle_post_request(environ)
        except exceptions.EngineIOError as exc:
            self.logger.info("%s: closing session: %r", socket.sid, exc)
            await socket.fail()
            return self._bad_request("Invalid payload")
        except Exception:  # an application handler failed: keep the session, like upstream
            self.logger.exception("post request handler error")
        return self._ok()

    async def _handle_connect(self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None) -> Any:
        """Open a session: exact handshake values, heartbeat started before the OPEN is sent."""
        sid = self.generate_id()
        sock = self.socket_class(self, sid)
        if transport == "websocket":
            sock._early = []
        self.sockets[sid] = sock
        sock.schedule_ping()
        await sock.send(packet.Packet(packet.OPEN, self.handshake(sid, transport)))
        ret = await self._trigger_event("connect", sid, environ, run_async=False)
        if ret is not None and ret is not True:
            sock._cancel_heartbeat()
            self.sockets.pop(sid, None)
            self.logger.warning("Application rejected connection")
            return self._unauthorized(ret or None)
        if transport == "websocket":  # straight to the handler: three fewer frames held per connection
            response = await self._async["websocket"](sock._websocket_handler, self)(environ)
            if sock.closed:
                self.sockets.pop(sid, None)
            return response
        sock.connected = True
        try:
            return self._ok(await sock.poll(), headers=self._cookie_headers(sid), jsonp_index=jsonp_index)
        except exceptions.QueueEmpty:
            return self._bad_request()

    def handshake(self, sid: str, transport: str) -> dict[str, Any]:
        """The OPEN packet payload (pingInterval in ms, grace included, without truncation)."""
        return {
            "sid": sid,
            "upgrades": self._upgrades(sid, transport),
            "pingTimeout": round(self.ping_timeout * 1000),
            "pingInterval": round((self.ping_interval + self.ping_interval_grace_period) * 1000),
            "maxPayload": self.max_http_buffer_size,
        }

    def _cookie_headers(self, sid: str) -> list[tuple[str, str]] | None:
        """The Set-Cookie header for the sid cookie, if one is configured."""
        if not self.cookie:
            return None
        attrs = self.cookie if isinstance(self.cookie, dict) else {"name": self.cookie, "path": "/", "SameSite": "Lax"}
        return [("Set-Cookie", self._generate_sid_cookie(sid, attrs))]

    def _ok(self, packets: list[Any] | None = None, headers: list[Any] | None = None,
            jsonp_index: int | None = None) -> dict[str, Any]:
        """A 200 response; an acknowledged POST answers `ok` like the reference server."""
        if packets is None:
            return {"status": "200 OK", "headers": [("Content-Type", "text/html")], "response": b"ok"}
        return super()._ok(packets, headers=headers, jsonp_index=jsonp_index)

    def _method_not_found(self) -> dict[str, Any]:
        """Unsupported methods are a 400 Bad Request in the protocol, not a 405."""
        return self._bad_request("Bad request method")

    async def close_session(self, sid: str) -> None:
        """Close a session because the layer above received an invalid packet from it."""
        sock = self.sockets.get(sid)
        if sock is not None and not sock.closed:
            await sock.fail()

    async def flush(self, sid: str, pause: float = 0.0) -> None:
        """Wait until a WebSocket session has written all queued packets, then `pause` seconds."""
        sock = self.sockets.get(sid)
        if sock is None or not sock._ws_active:
            return
        await sock.output_flushed(self.ping_timeout)
        await asyncio.sleep(pause)

    def options(self) -> dict[str, Any]:
        """Constructor options that reproduce this server's engine settings."""
        return {
            "async_mode": self.async_mode,
            "ping_interval": (self.ping_interval, self.ping_interval_grace_period),
            "ping_timeout": self.ping_timeout,
            "max_http_buffer_size": self.max_http_buffer_size,
            "allow_upgrades": self.allow_upgrades,
            "http_compression": self.http_compression,
            "compression_threshold": self.compression_threshold,
            "cookie": self.cookie,
            "cors_allowed_origins": self.cors_allowed_origins,
            "cors_credentials": self.cors_credentials,
            "transports": list(self.transports),
        }
