"""Protocol fix: the aiohttp WebSocket driver without permessage-deflate, and WebSocket request helpers."""
from __future__ import annotations

from typing import Any

import engineio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as aiohttp_driver


def is_websocket_request(environ: dict[str, Any]) -> bool:
    """True for an HTTP request asking to switch to the WebSocket protocol."""
    connection = [s.strip() for s in environ.get("HTTP_CONNECTION", "").lower().split(",")]
    return "upgrade" in connection and environ.get("HTTP_UPGRADE", "").lower() == "websocket"


async def refuse_websocket(server: engineio.AsyncServer, environ: dict[str, Any]) -> Any:
    """Complete the WebSocket handshake and close at once (what the protocol asks for)."""

    async def close_now(ws: Any) -> None:
        """Close the WebSocket as soon as it is open."""
        await ws.close()

    return await server._async["websocket"](close_now, server)(environ)


class UncompressedWebSocket(aiohttp_driver.WebSocket):
    """python-engineio's aiohttp WebSocket wrapper without permessage-deflate (engine.io's default).

    With compression negotiated, clients inflate frames asynchronously, so a WebSocket message
    can be delivered after an HTTP response the server wrote later; it also costs CPU per frame.
    """

    async def __call__(self, environ: dict[str, Any]) -> Any:
        """Accept the WebSocket handshake and run the Engine.IO handler on it."""
        self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(environ["aiohttp.request"])
        self.environ: dict[str, Any] | None = environ
        await self.handler(self)
        self.environ = None
        return self._sock
