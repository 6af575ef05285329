"""Engine.IO session (socket) subclass: exact heartbeat, long-polling and upgrade behaviour."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import engineio
from aiohttp.web import WebSocketResponse
from engineio import exceptions, packet, payload
from engineio.async_drivers import aiohttp as aiohttp_driver
from engineio.async_socket import AsyncSocket

#: how long a poll that arrives mid-upgrade waits for the upgrade to finish (Node checks every 100 ms)
UPGRADE_POLL_WAIT = 0.1


class InvalidPacket(exceptions.EngineIOError):
    """A client sent something that is not a valid Engine.IO packet or payload."""


class CarelineSocket(AsyncSocket):
    """One Engine.IO session with protocol-exact heartbeat, polling and upgrade handling."""

    def __init__(self, server: engineio.AsyncServer, sid: str) -> None:
        """Create the session and its heartbeat state."""
        super().__init__(server, sid)
        self.last_ping = None  # stock heartbeat bookkeeping is replaced by the fields below
        self._ping_sent_at: float | None = None
        self._heartbeat: asyncio.Task | None = None
        self._poll_pending = False
        self._ws_active = False
        self._upgraded_event = asyncio.Event()

    # -- heartbeat -------------------------------------------------------
    def schedule_ping(self) -> None:
        """(Re)start the cycle: PING after ping_interval, close if no PONG within ping_timeout."""
        self._cancel_heartbeat()
        self._heartbeat = asyncio.ensure_future(self._heartbeat_cycle())

    async def _heartbeat_cycle(self) -> None:
        """Send one PING and close the session if its PONG does not arrive in time."""
        await asyncio.sleep(self.server.ping_interval)
        if self.closing or self.closed:
            return
        self._ping_sent_at = time.monotonic()
        await self.send(packet.Packet(packet.PING))
        await asyncio.sleep(self.server.ping_timeout)
        if self._ping_sent_at is not None:
            await self.close(wait=False, reason=self.server.reason.PING_TIMEOUT)

    def _cancel_heartbeat(self) -> None:
        """Stop the heartbeat task (unless we are running inside it)."""
        task, self._heartbeat = self._heartbeat, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

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
        if self._ws_active:
            self.queue.put_nowait(None)
        if self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]
        if wait and (self._poll_pending or self._ws_active):
            try:
                await asyncio.wait_for(self.queue.join(), self.server.ping_timeout)
            except asyncio.TimeoutError:
                pass

    # -- HTTP long-polling -----------------------------------------------
    async def handle_get_request(self, environ: dict) -> Any:
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
        try:
            await asyncio.wait_for(self._upgraded_event.wait(), UPGRADE_POLL_WAIT)
        except asyncio.TimeoutError:
            pass
        if self.upgraded:
            return self.server._bad_request("Unexpected HTTP request")
        return [packet.Packet(packet.NOOP)]

    async def handle_post_request(self, environ: dict) -> None:
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
    async def _upgrade_websocket(self, environ: dict) -> Any:
        """Start the WebSocket transport; a second WebSocket for this session is accepted and closed."""
        if self.upgrading or self.upgraded:
            return await refuse_websocket(self.server, environ)
        return await super()._upgrade_websocket(environ)

    async def _websocket_handler(self, ws: Any) -> None:
        """Run the WebSocket transport: probe/upgrade if needed, then reader and writer."""
        if self.connected:
            if not await self._probe_and_upgrade(ws):
                await ws.close()
                return
        else:
            self.connected = True
            self.upgraded = True
        self._ws_active = True
        writer = asyncio.ensure_future(self._ws_writer(ws))
        await self._ws_reader(ws)
        self.queue.put_nowait(None)
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _probe_and_upgrade(self, ws: Any) -> bool:
        """Run the `2probe`/`3probe`/`5` exchange; True once the session is upgraded."""
        self.upgrading = True
        try:
            pkt = await self._ws_read(ws)
            if pkt is None or pkt.packet_type != packet.PING or pkt.data != "probe":
                return False
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            if self._poll_pending:
                self.queue.put_nowait(packet.Packet(packet.NOOP))  # end the pending poll
            pkt = await self._ws_read(ws)
            if pkt is None or pkt.packet_type != packet.UPGRADE:
                return False
            self.upgraded = True
            self._upgraded_event.set()
            return True
        except InvalidPacket:
            return False
        finally:
            self.upgrading = False

    async def _ws_read(self, ws: Any) -> packet.Packet | None:
        """Read and decode one frame; None when the connection ends, InvalidPacket if malformed."""
        timeout = self.server.ping_interval + self.server.ping_timeout
        try:
            data = await asyncio.wait_for(ws.wait(), timeout)
        except (OSError, asyncio.TimeoutError, ValueError):
            return None
        if data is None or len(data) > self.server.max_http_buffer_size:
            return None
        try:
            return packet.Packet(encoded_packet=data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidPacket(str(exc)) from exc

    async def _ws_reader(self, ws: Any) -> None:
        """Feed WebSocket frames to the session until it closes or the client misbehaves."""
        while not self.closed:
            try:
                pkt = await self._ws_read(ws)
                if pkt is None:
                    return
                await self.receive(pkt)
            except exceptions.EngineIOError:
                await self.fail()
                return

    async def _ws_writer(self, ws: Any) -> None:
        """Send queued packets over the WebSocket until a None sentinel, then close it."""
        try:
            while True:
                pkt = await self.queue.get()
                try:
                    if pkt is None:
                        break
                    await ws.send(pkt.encode())
                finally:
                    self.queue.task_done()  # after the write, so flush() means "on the wire"
        except Exception:  # the peer went away mid-send
            pass
        finally:
            self._ws_active = False
            await ws.close()


def is_websocket_request(environ: dict) -> bool:
    """True for an HTTP request asking to switch to the WebSocket protocol."""
    connection = [s.strip() for s in environ.get("HTTP_CONNECTION", "").lower().split(",")]
    return "upgrade" in connection and environ.get("HTTP_UPGRADE", "").lower() == "websocket"


async def refuse_websocket(server: engineio.AsyncServer, environ: dict) -> Any:
    """Complete the WebSocket handshake and close at once (what the protocol asks for)."""

    async def close_now(ws: Any) -> None:
        await ws.close()

    return await server._async["websocket"](close_now, server)(environ)


async def read_body(environ: dict, length: int) -> bytes:
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


class UncompressedWebSocket(aiohttp_driver.WebSocket):
    """python-engineio's aiohttp WebSocket wrapper without permessage-deflate (engine.io's default).

    With compression negotiated, clients inflate frames asynchronously, so a WebSocket message
    can be delivered after an HTTP response the server wrote later; it also costs CPU per frame.
    """

    async def __call__(self, environ: dict) -> Any:
        """Accept the WebSocket handshake and run the Engine.IO handler on it."""
        self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(environ["aiohttp.request"])
        self.environ = environ
        await self.handler(self)
        return self._sock
