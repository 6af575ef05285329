"""Engine.IO output without a writer task: packets encoded once, WebSocket frames written straight
to the transport, a per-socket backlog (drained by a short-lived task) only under back-pressure.

Every packet a session sends goes through `Output.send_nowait`, so the order of broadcasts,
direct emits and acks to one socket is the order in which they were sent.

A reader that stops reading must not make the server hold its output without bound: once a
socket's backlog passes the engine's `output_backlog_limit` bytes, the connection is dropped (and
its backlog with it). The client sees a transport close, reconnects and catches up from history.
"""
from __future__ import annotations

import asyncio
import base64
import struct
from collections import deque
from typing import Any

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
        return self.encode_cache  # type: ignore[return-value]

    @property
    def frame(self) -> bytes:
        """The WebSocket frame carrying this packet (built on first use)."""
        if self._frame is None:
            self._frame = ws_frame(self.encode_cache)  # type: ignore[arg-type]
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
        return "b" + base64.b64encode(self.data).decode() if b64 else self.data

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


PING = EncodedPacket("2")


class Output:
    """Mixin for an Engine.IO session: ordered, task-free output over WebSocket, queue for polling."""

    _ws: Any = None  # the aiohttp WebSocketResponse while the WebSocket transport is active
    _early: list | None = None  # a WebSocket-only session's output before its WebSocket runs (no queue needed)
    _backlog: deque | None = None  # frames waiting for a paused transport
    _backlog_bytes = 0
    _flusher: asyncio.Task | None = None

    def send_nowait(self, pkt: packet.Packet) -> None:
        """Send a packet now: straight to the WebSocket if it can take it, else in order behind the backlog."""
        if self.closed:  # type: ignore[attr-defined]
            return
        ws = self._ws
        if ws is None:
            if self._early is not None:
                self._early.append(pkt)
            else:
                self.queue.put_nowait(pkt)  # type: ignore[attr-defined]  # polling, or not upgraded yet
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
        if self._backlog_bytes > self.server.output_backlog_limit:  # type: ignore[attr-defined]
            self._drop_slow_reader()
        elif self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_backlog())

    def _drop_slow_reader(self) -> None:
        """Abort the connection of a reader that fell too far behind, and forget its backlog."""
        self._backlog = None
        writer = self._ws._writer if self._ws is not None else None
        if writer is not None:
            writer.transport.abort()
        self.close_soon(self.server.reason.TRANSPORT_ERROR, abort=True)  # type: ignore[attr-defined]

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
