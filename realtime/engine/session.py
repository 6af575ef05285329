"""Protocol fixes for one Engine.IO session: exact heartbeat, long-polling and upgrade behaviour.

The speed path of a session (its output, lazily created polling queue) is `SessionOutput`.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import engineio
from aiohttp import WSMsgType
from engineio import exceptions, packet, payload
from engineio.async_socket import AsyncSocket

from realtime.engine.session_output import PING, SessionOutput
from realtime.engine.websocket import SessionFrames, is_websocket_request, refuse_websocket

#: how long a poll that arrives mid-upgrade waits for the upgrade to finish (Node checks every 100 ms)
UPGRADE_POLL_WAIT = 0.1
#: tasks started from timer callbacks (asyncio keeps only weak references to tasks)
_closing_tasks: set[asyncio.Future[None]] = set()


def keep(task: asyncio.Future[None]) -> asyncio.Future[None]:
    """Hold a started task until it finishes."""
    _closing_tasks.add(task)
    task.add_done_callback(_closing_tasks.discard)
    return task


class InvalidPacket(exceptions.EngineIOError):
    """A client sent something that is not a valid Engine.IO packet or payload."""


class CarelineSocket(SessionOutput, AsyncSocket):
    """One Engine.IO session with protocol-exact heartbeat, polling and upgrade handling.

    Lean by design (thousands per process): no writer or heartbeat task (timer handles and
    `SessionOutput` instead), the polling queue and upgrade event are created only when needed.
    """

    def __init__(self, server: engineio.AsyncServer, sid: str) -> None:
        """Create the session (see SessionOutput) and its heartbeat state."""
        super().__init__(server, sid)
        self.last_ping = None  # stock heartbeat bookkeeping is replaced by the fields below
        self._ping_sent_at: float | None = None
        self._poll_pending = False
        self._ws_active = False
        self._upgraded_event: asyncio.Event | None = None
        self._ws_ended: asyncio.Future[None] | None = None
        self._inbox: deque[packet.Packet] | None = None  # packets waiting while an earlier one is handled

    # -- heartbeat (the engine's timer wheel: no timer per session) ------------------------------------
    def schedule_ping(self) -> None:
        """(Re)start the cycle: PING after ping_interval, close if no PONG within ping_timeout."""
        self.server.heartbeats.add(self, self.server.ping_interval)

    def heartbeat_due(self) -> None:
        """The wheel's callback: send the PING that is due, or close if its PONG is overdue."""
        if self.closing or self.closed:
            return
        if self._ping_sent_at is None:
            self._ping_sent_at = time.monotonic()
            self.send_nowait(PING)
            self.server.heartbeats.add(self, self.server.ping_timeout)
        else:
            self.close_soon(self.server.reason.PING_TIMEOUT)

    def close_soon(self, reason: str, abort: bool = False) -> None:
        """Close the session from synchronous code (a timer, the output path)."""
        keep(asyncio.ensure_future(self.close(wait=False, abort=abort, reason=reason)))

    def _cancel_heartbeat(self) -> None:
        """Stop the heartbeat timer."""
        self.server.heartbeats.discard(self)

    def _on_pong(self) -> None:
        """Accept the PONG for the outstanding PING and schedule the next one."""
        if self._ping_sent_at is not None:
            self._ping_sent_at = None
            self.schedule_ping()

    def pong_overdue(self) -> bool:
        """True when a PING has gone unanswered for ping_timeout or longer."""
        sent = self._ping_sent_at
        return sent is not None and time.monotonic() - sent >= self.server.ping_timeout

    async def check_ping_timeout(self) -> bool:
        """Close the session if its PONG is overdue; False once it is closed."""
        if self.closed:
            raise exceptions.SocketIsClosedError()
        if self.closing or not self.pong_overdue():
            return True
        await self.close(wait=False, reason=self.server.reason.PING_TIMEOUT)
        return False

    # -- packets ---------------------------------------------------------
    async def receive(self, pkt: packet.Packet) -> None:
        """Handle one client packet; packets a v4 client may not send are ignored."""
        if pkt.packet_type == packet.PONG:
            self._on_pong()
        elif pkt.packet_type in (packet.MESSAGE, packet.CLOSE):
            await super().receive(pkt)
        elif pkt.packet_type not in (packet.OPEN, packet.PING, packet.UPGRADE, packet.NOOP):
            raise InvalidPacket(f"unknown packet type {pkt.packet_type}")

    async def fail(self) -> None:
        """Close the session because the client broke the protocol."""
        await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)

    async def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        """Close once; end a pending poll (NOOP) or the WebSocket and forget the session."""
        if self.closed or self.closing:
            return
        self._cancel_heartbeat()
        await super().close(wait=False, abort=abort, reason=reason)
        if abort and self._poll_pending:
            self.queue.put_nowait(packet.Packet(packet.NOOP))
        closing_ws = None
        if self._ws is not None:
            closing_ws = keep(asyncio.ensure_future(self._close_ws()))
        if self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]
            self.server.released.closed()
        if wait and closing_ws is not None:
            await closing_ws
        elif wait and self._poll_pending:
            try:
                await asyncio.wait_for(self.queue.join(), self.server.ping_timeout)
            except TimeoutError:
                pass

    async def _close_ws(self) -> None:
        """Close the WebSocket once what was sent before (e.g. the CLOSE packet) is written."""
        await self.output_flushed(self.server.ping_timeout)
        ws = self._ws
        self.stop_ws_output()
        if ws is not None:
            ws._reader.detach()  # close() reads the client's CLOSE reply itself
            await ws.close()
        self.ended()

    # -- HTTP long-polling -----------------------------------------------
    async def handle_get_request(self, environ: dict[str, Any]) -> Any:
        """Serve a poll: NOOP while upgrading, close the session on a duplicate poll."""
        if is_websocket_request(environ):
            return await self._upgrade_websocket(environ)
        if self.upgrading:
            return await self._poll_during_upgrade()
        if self._poll_pending:
            await self.fail()
            return self.server._bad_request("Duplicate poll request")
        self._poll_pending = True
        try:
            return await super().handle_get_request(environ)
        finally:
            self._poll_pending = False

    async def _poll_during_upgrade(self) -> Any:
        """Answer a poll made mid-upgrade: NOOP, or 400 if the upgrade completes meanwhile."""
        if self._upgraded_event is not None:
            try:
                await asyncio.wait_for(self._upgraded_event.wait(), UPGRADE_POLL_WAIT)
            except TimeoutError:
                pass
        if self.upgraded:
            return self.server._bad_request("Unexpected HTTP request")
        return [packet.Packet(packet.NOOP)]

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        """Decode a POSTed payload; an invalid payload closes the session (InvalidPacket)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.server.max_http_buffer_size:
            raise exceptions.ContentTooLongError()
        body = await read_body(environ, length)
        try:
            packets = payload.Payload(encoded_payload=body.decode("utf-8")).packets
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidPacket(str(exc)) from exc
        for pkt in packets:
            await self.receive(pkt)
            if self.closed:
                break

    # -- WebSocket -------------------------------------------------------
    async def _upgrade_websocket(self, environ: dict[str, Any]) -> Any:
        """Start the WebSocket transport; a second WebSocket for this session is accepted and closed."""
        if self.upgrading or self.upgraded:
            return await refuse_websocket(self.server, environ)
        return await super()._upgrade_websocket(environ)

    async def _websocket_handler(self, ws: Any) -> None:
        """Run the WebSocket transport: probe/upgrade if needed, then deliver its frames until it ends.

        Frames reach the session from the parser (`SessionFrames` → `frame`), so an idle connection has no
        read in progress; this handler only waits for the end.
        """
        if self.connected:
            if not await self._probe_and_upgrade(ws):
                await ws.close()
                return
        else:
            self.connected = True
            self.upgraded = True
        ws.environ.clear()  # the request's environ stays referenced by the handler frames for the whole session
        self._ws_active = True
        self.start_ws_output(ws._sock, self._take_queued())
        self._ws_ended = asyncio.get_running_loop().create_future()
        frames: SessionFrames = ws._sock._reader
        frames.attach(self)
        await self._ws_ended
        frames.detach()
        self._ws_active = False
        self.stop_ws_output()
        await ws.close()
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    # -- frames from the WebSocket (FrameSink), in order, one task per burst -------------------------
    def frame(self, data: str | bytes) -> None:
        """A message from the client: decoded now, handled in order after those before it."""
        if self.closed or self._ws_ended is None or self._ws_ended.done():
            return
        if len(data) > self.server.max_http_buffer_size:
            return self.ended()
        try:
            pkt = packet.Packet(encoded_packet=data)
        except (ValueError, TypeError, KeyError, IndexError):
            keep(asyncio.ensure_future(self.fail()))
            return self.ended()
        if pkt.packet_type == packet.PONG:
            self._on_pong()
            return
        if self._inbox is None:
            self._inbox = deque()
            keep(asyncio.ensure_future(self._handle_inbox(self._inbox)))
        self._inbox.append(pkt)

    async def _handle_inbox(self, inbox: deque[packet.Packet]) -> None:
        """Handle the queued packets one after the other (as the stock reader loop awaited each)."""
        try:
            while inbox and not self.closed:
                try:
                    await self.receive(inbox.popleft())
                except exceptions.EngineIOError:
                    await self.fail()
                    self.ended()
                    return
        finally:
            self._inbox = None

    def ping(self, data: bytes) -> None:
        """Answer a WebSocket-level PING (Engine.IO has its own heartbeat; browsers do not send these)."""
        ws = self._ws
        if ws is not None:
            keep(asyncio.ensure_future(ws.pong(data)))

    def ended(self) -> None:
        """The WebSocket is closing or closed: end the handler."""
        ended = self._ws_ended
        if ended is not None and not ended.done():
            ended.set_result(None)

    def _take_queued(self) -> list[packet.Packet]:
        """Everything queued for polling that no poll took (sent during the upgrade)."""
        taken: list[packet.Packet] = self._early or []
        self._early = None
        queue = self._queue
        while queue is not None and not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is not None:
                taken.append(pkt)
        if not self._poll_pending:  # polls are refused from now on: the queue is not needed any more
            self._queue = None
        self._upgraded_event = None
        return taken

    async def _probe_and_upgrade(self, ws: Any) -> bool:
        """Run the `2probe`/`3probe`/`5` exchange; True once the session is upgraded."""
        self._upgraded_event = asyncio.Event()
        self.upgrading = True
        try:
            pkt = await self._ws_read(ws, probing=True)
            if pkt is None or pkt.packet_type != packet.PING or pkt.data != "probe":
                return False
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            if self._poll_pending:
                self.queue.put_nowait(packet.Packet(packet.NOOP))  # end the pending poll
            pkt = await self._ws_read(ws, probing=True)
            if pkt is None or pkt.packet_type != packet.UPGRADE:
                return False
            self.upgraded = True
            self._upgraded_event.set()
            return True
        except InvalidPacket:
            return False
        finally:
            self.upgrading = False

    async def _ws_read(self, ws: Any, probing: bool = False) -> packet.Packet | None:
        """Read and decode one frame; None when the connection ends, InvalidPacket if malformed.

        Only the upgrade probe has a read deadline: afterwards the heartbeat closes a silent session
        (and so the WebSocket), which spares a timer per read and per idle connection.
        """
        timeout = self.server.ping_interval + self.server.ping_timeout if probing else None
        try:  # receive() needs no extra task per read, unlike wait_for(ws.wait())
            msg = await ws._sock.receive(timeout)
        except (TimeoutError, OSError, ValueError, RuntimeError):
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        data = msg.data
        if len(data) > self.server.max_http_buffer_size:
            return None
        try:
            return packet.Packet(encoded_packet=data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidPacket(str(exc)) from exc



async def read_body(environ: dict[str, Any], length: int) -> bytes:
    """Read exactly `length` bytes of request body (aiohttp's read(n) may return less)."""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = await stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
