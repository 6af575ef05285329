"""Speed path: how an Engine.IO session's packets leave, without a writer task.

Packets are encoded once, WebSocket frames written straight to the transport, and a per-socket
backlog (drained by a short-lived task) exists only under back-pressure; the long-polling queue
is created on first use.

Every packet a session sends goes through `SessionOutput.send_nowait`, so the order of broadcasts,
direct emits and acks to one socket is the order in which they were sent.

A reader that stops reading must not make the server hold its output without bound: once a
socket's backlog passes the engine's `output_backlog_limit` bytes, the connection is dropped (and
its backlog with it). The client sees a transport close, reconnects and catches up from history.

aiohttp internals used here (pinned in setup.cfg, listed in docs/protocol.md): the WebSocketResponse's
`_writer`, its `protocol.writing_paused` and `protocol._drain_helper()`, and `transport`.
"""
from __future__ import annotations

import asyncio
import base64
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from engineio import packet

TEXT, BINARY = 0x81, 0x82  # FIN + opcode; server frames are never masked


def ws_frame(data: str | bytes) -> bytes:
    """One unmasked WebSocket frame (text for str, binary for bytes)."""
    if isinstance(data, str):
        payload, first = data.encode(), TEXT
    else:
        payload, first = bytes(data), BINARY
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


class EncodedPacket(packet.Packet):
    """A text Engine.IO packet encoded once; its WebSocket frame is built once for all recipients."""

    def __init__(self, encoded: str) -> None:
        """Wrap an encoded text packet (`"4" + socket.io packet`, `"2"`, ...)."""
        self.packet_type = int(encoded[0])
        self.data = encoded[1:]
        self.binary = False
        self.encode_cache = encoded
        self._frame: bytes | None = None

    def encode(self, b64: bool = False) -> str:
        """The encoded packet (never re-encoded)."""
        return self.encode_cache

    @property
    def frame(self) -> bytes:
        """The WebSocket frame carrying this packet (built on first use)."""
        if self._frame is None:
            self._frame = ws_frame(self.encode_cache)
        return self._frame


class BinaryPacket(packet.Packet):
    """A binary MESSAGE shared by many recipients: WebSocket (raw) and polling (base64) each get their own
    encoding (the stock Packet caches whichever encoding it produced first)."""

    def __init__(self, data: bytes) -> None:
        """Wrap an attachment."""
        super().__init__(packet.MESSAGE, data)
        self._frame: bytes | None = None

    def encode(self, b64: bool = False) -> str | bytes:
        """Raw bytes, or `b` + base64 for long-polling."""
        data: bytes = self.data
        return "b" + base64.b64encode(data).decode() if b64 else data

    @property
    def frame(self) -> bytes:
        """The binary WebSocket frame (built on first use)."""
        if self._frame is None:
            self._frame = ws_frame(self.data)
        return self._frame


def frame_of(pkt: packet.Packet) -> bytes:
    """The WebSocket frame of any Engine.IO packet."""
    if isinstance(pkt, (EncodedPacket, BinaryPacket)):
        return pkt.frame
    return ws_frame(pkt.encode())


def eio_messages(encoded: str | list[str | bytes]) -> list[packet.Packet]:
    """The Engine.IO MESSAGE packets carrying an encoded Socket.IO packet (text, then attachments)."""
    parts = encoded if isinstance(encoded, list) else [encoded]
    return [EncodedPacket("4" + part) if isinstance(part, str) else BinaryPacket(part) for part in parts]


PING = EncodedPacket("2")


class SessionOutput:
    """Mixin for an Engine.IO session: ordered, task-free output over WebSocket, queue for polling.

    Lean by design (thousands per process): no writer task, the polling queue is created only when needed.
    """

    _ws: Any = None  # the aiohttp WebSocketResponse while the WebSocket transport is active
    _early: list[packet.Packet] | None = None  # a WebSocket-only session's output before its WebSocket runs
    _backlog: deque[bytes] | None = None  # frames waiting for a paused transport
    _backlog_bytes = 0
    _flusher: asyncio.Future[None] | None = None

    if TYPE_CHECKING:  # provided by the session class this is mixed into
        async def check_ping_timeout(self) -> bool:
            """False once the session is closed for a missed PONG."""

        def close_soon(self, reason: str, abort: bool = False) -> None:
            """Close the session from synchronous code."""

    def __init__(self, server: Any, sid: str) -> None:
        """BaseSocket's fields, without its eager polling queue."""
        self.server = server
        self.sid = sid
        self.connected = self.upgrading = self.upgraded = self.closing = self.closed = False
        self.session: dict[str, Any] = {}
        self._queue: asyncio.Queue[packet.Packet | None] | None = None

    @property
    def queue(self) -> asyncio.Queue[packet.Packet | None]:
        """The polling queue (created on first use: a WebSocket-only session never needs one)."""
        if self._queue is None:
            self._queue = self.server.create_queue()
        return self._queue

    async def send(self, pkt: packet.Packet) -> None:
        """Send a packet (through the same ordered path as broadcasts)."""
        if await self.check_ping_timeout():
            self.send_nowait(pkt)

    def send_nowait(self, pkt: packet.Packet) -> None:
        """Send a packet now: straight to the WebSocket if it can take it, else in order behind the backlog."""
        if self.closed:
            return
        ws = self._ws
        if ws is None:
            if self._early is not None:
                self._early.append(pkt)
            else:
                self.queue.put_nowait(pkt)  # polling, or not upgraded yet
            return
        if self._backlog is None:
            writer = ws._writer
            if writer is not None and not writer.protocol.writing_paused:
                if not writer.transport.is_closing():
                    writer.transport.write(frame_of(pkt))
                return
            self._backlog = deque()
            self._backlog_bytes = 0
        frame = frame_of(pkt)
        self._backlog.append(frame)
        self._backlog_bytes += len(frame)
        if self._backlog_bytes > self.server.output_backlog_limit:
            self._drop_slow_reader()
        elif self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_backlog())

    def _drop_slow_reader(self) -> None:
        """Abort the connection of a reader that fell too far behind, and forget its backlog."""
        self._backlog = None
        writer = self._ws._writer if self._ws is not None else None
        if writer is not None:
            writer.transport.abort()
        self.close_soon(self.server.reason.TRANSPORT_ERROR, abort=True)

    async def _flush_backlog(self) -> None:
        """Write the backlog in order, waiting for the transport to drain whenever it is paused."""
        backlog = self._backlog
        try:
            while backlog and backlog is self._backlog:
                writer = self._ws._writer if self._ws is not None else None
                if writer is None or writer.transport.is_closing():
                    break
                if writer.protocol.writing_paused:
                    await writer.protocol._drain_helper()
                    continue
                frame = backlog.popleft()
                self._backlog_bytes -= len(frame)
                writer.transport.write(frame)
        except (ConnectionError, RuntimeError):  # the peer went away while we waited
            pass
        finally:
            if self._backlog is backlog:
                self._backlog = None
            self._flusher = None

    def start_ws_output(self, ws: Any, pending: list[packet.Packet]) -> None:
        """Switch output to the WebSocket; `pending` (queued before the switch) goes out first."""
        self._ws = ws
        for pkt in pending:
            self.send_nowait(pkt)

    def stop_ws_output(self) -> None:
        """Stop writing to the WebSocket (it is closing)."""
        self._ws = None

    async def output_flushed(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until every packet sent so far was handed to the transport."""
        flusher = self._flusher
        if flusher is not None:
            await asyncio.wait([flusher], timeout=timeout)
