"""Protocol fix: the aiohttp WebSocket driver without permessage-deflate, and WebSocket request helpers."""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

import engineio
from aiohttp import WSMsgType, web_ws
from aiohttp._websocket.reader import WebSocketDataQueue
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as aiohttp_driver
from multidict import CIMultiDict, CIMultiDictProxy


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
        self._sock = SessionWebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(environ["aiohttp.request"])
        shed_http_state(environ["aiohttp.request"])
        self.environ: dict[str, Any] | None = environ
        await self.handler(self)
        self.environ = None
        return self._sock


#: what an upgraded request's headers become (a WebSocket never reads them again)
NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class NoMessages(list[Any]):
    """An upgraded connection's queue of HTTP requests: always empty (aiohttp's is a deque, ~0.7 KB each)."""

    __slots__ = ()

    def popleft(self) -> Any:
        """As deque.popleft."""
        return self.pop(0)


def shed_http_state(request: Any) -> None:
    """After the WebSocket handshake, let go of what aiohttp keeps of the HTTP request for the connection's
    whole life but never uses again: the parsed headers (raw and decoded), cached request properties, the
    HTTP parser and the pipelined-request queue (aiohttp 3.14 internals, docs/protocol.md)."""
    request._message = request._message._replace(headers=NO_HEADERS, raw_headers=())
    request._headers = NO_HEADERS
    request._cache.clear()
    protocol = request._protocol
    if protocol is not None and protocol._upgraded and protocol._payload_parser is not None:
        protocol._parser = None
        protocol._messages = NoMessages()


class FrameSink(Protocol):
    """Where a WebSocket's messages go once its session runs (`SessionFrames.attach`)."""

    def frame(self, data: str | bytes) -> None:
        """A TEXT or BINARY message."""

    def ping(self, data: bytes) -> None:
        """A WebSocket PING (answer it)."""

    def ended(self) -> None:
        """The WebSocket is closing or closed (a CLOSE message, an error, or the end of the stream)."""


class SessionFrames(WebSocketDataQueue):
    """aiohttp's WebSocket message queue, except that once a session is attached its messages go straight to it.

    An idle connection then has no read in progress: no task, no coroutine frames and no future waiting,
    and the queue's own buffer (a deque) is made only if something has to be read from it (before
    `attach`, and the CLOSE that `close()` waits for).
    """

    __slots__ = ("_args", "_ready", "_sink")

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the queue's arguments; its buffer is made on first use (`_buffering`)."""
        self._args = (protocol, limit, loop)
        self._ready = False
        self._sink: FrameSink | None = None

    def _buffering(self) -> None:
        if self._ready:
            return
        self._ready = True
        eof, error = self.is_eof(), self.exception()
        protocol, limit, loop = self._args
        WebSocketDataQueue.__init__(self, protocol, limit, loop=loop)
        if error is not None:
            WebSocketDataQueue.set_exception(self, error)
        elif eof:
            WebSocketDataQueue.feed_eof(self)

    def attach(self, sink: FrameSink) -> None:
        """Deliver every message to `sink` from now on, first those queued before."""
        self._sink = sink
        buffer = self._buffer if self._ready else None
        while buffer:  # rare (a client that sent right after the upgrade): queued messages first, in order
            message, _ = buffer.popleft()
            self._deliver(sink, message)
        if self.is_eof():
            sink.ended()

    def detach(self) -> None:
        """Stop delivering (the session is closing the WebSocket and reads the CLOSE reply itself)."""
        self._sink = None

    def _deliver(self, sink: FrameSink, message: Any) -> bool:
        kind = message.type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            sink.frame(message.data)
            return True
        if kind is WSMsgType.PING:
            sink.ping(message.data)
            return True
        return kind is WSMsgType.PONG

    def feed_data(self, data: Any, size: int) -> None:
        """A message from the parser: to the session, or (closing, not attached) into the buffer."""
        sink = self._sink
        if sink is not None and self._deliver(sink, data):
            return
        self._buffering()
        WebSocketDataQueue.feed_data(self, data, size)
        if sink is not None:
            sink.ended()

    def feed_eof(self) -> None:
        """The stream ended."""
        WebSocketDataQueue.feed_eof(self)
        if self._sink is not None:
            self._sink.ended()

    def set_exception(self, *args: Any) -> None:
        """The stream failed."""
        WebSocketDataQueue.set_exception(self, *args)
        if self._sink is not None:
            self._sink.ended()

    async def read(self) -> Any:
        """The next queued message (the probe, and `close()` waiting for the CLOSE reply)."""
        self._buffering()
        return await WebSocketDataQueue.read(self)


class SessionWebSocketResponse(WebSocketResponse):
    """aiohttp's WebSocketResponse whose message queue is `SessionFrames` (as `_post_start` in aiohttp 3.14)."""

    def _post_start(self, request: Any, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        loop = self._loop
        assert loop is not None
        self._reader = SessionFrames(request._protocol, web_ws.DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = web_ws.WebSocketReader(self._reader, self._max_msg_size, compress=bool(self._compress),
                                              decode_text=self._decode_text)
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)
