"""A raw Engine.IO WebSocket client: sends exactly the frames a test writes (what an attacker would do)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.conftest import RunningServer


class RawSocket:
    """One WebSocket speaking Engine.IO v4 / Socket.IO v5 frame by frame."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws = http, ws

    @classmethod
    async def open(cls, server: RunningServer) -> RawSocket:
        """Open the WebSocket and read the Engine.IO handshake."""
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                   max_msg_size=0)
        raw = cls(http, ws)
        assert str(await raw.recv()).startswith("0{")
        return raw

    async def connect(self, namespace: str, token: str) -> None:
        """Join `namespace` with a token."""
        await self.ws.send_str(f"40{namespace}," + json.dumps({"token": token}))
        reply = str(await self.recv())
        assert reply.startswith(f"40{namespace},"), reply

    async def send(self, frame: str | bytes) -> None:
        """Send one frame as it is."""
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def recv(self, timeout: float = 5.0) -> str | bytes | None:
        """The next data frame (pings answered), or None once the WebSocket is closed."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
                return None
            if msg.data == "2":
                await self.ws.send_str("3")
                continue
            return msg.data  # type: ignore[no-any-return]

    async def ack(self, namespace: str, ack_id: int, timeout: float = 5.0) -> Any:
        """Wait for the ack `ack_id` on `namespace` and return its envelope."""
        prefix = f"43{namespace},{ack_id}"
        while True:
            frame = await self.recv(timeout)
            assert frame is not None, f"closed while waiting for ack {ack_id}"
            if isinstance(frame, str) and frame.startswith(prefix + "["):
                return json.loads(frame[len(prefix):])[0]

    async def request(self, namespace: str, ack_id: int, body: str) -> Any:
        """Send `42<namespace>,<id><body>` and return the ack envelope."""
        await self.send(f"42{namespace},{ack_id}{body}")
        return await self.ack(namespace, ack_id)

    @property
    def closed(self) -> bool:
        """True once the server closed the WebSocket."""
        return self.ws.closed

    async def close(self) -> None:
        """Close the WebSocket and its HTTP session."""
        await self.ws.close()
        await self.http.close()
