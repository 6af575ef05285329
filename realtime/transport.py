"""careline's Socket.IO / Engine.IO server classes (protocol fixes and fast paths live here)."""
from __future__ import annotations

import asyncio
from typing import Any

import socketio
from socketio import packet as sio_packet

from realtime.engine import CarelineEngine

#: event names a client may not emit (they are reserved by the protocol)
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: packet types a client may send, with the payload check each must pass
CLIENT_PACKETS = {
    sio_packet.CONNECT: lambda data: data is None or isinstance(data, dict),
    sio_packet.DISCONNECT: lambda data: data is None,
    sio_packet.EVENT: lambda data: is_event_payload(data),
    sio_packet.BINARY_EVENT: lambda data: is_event_payload(data),
    sio_packet.ACK: lambda data: isinstance(data, list),
    sio_packet.BINARY_ACK: lambda data: isinstance(data, list),
}
BINARY_PACKETS = frozenset({sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK})
#: packets that are never held back while a namespace connection is being accepted
CONNECT_REPLIES = frozenset({sio_packet.CONNECT, sio_packet.CONNECT_ERROR, sio_packet.DISCONNECT})


def is_event_payload(data: Any) -> bool:
    """True for `[eventName, ...args]` with a non-reserved string (or numeric) event name."""
    if not isinstance(data, list) or not data:
        return False
    name = data[0]
    if isinstance(name, str):
        return name not in RESERVED_EVENTS
    return isinstance(name, (int, float)) and not isinstance(name, bool)


class CarelineServer(socketio.AsyncServer):
    """The Socket.IO server careline runs; a drop-in subclass of python-socketio's AsyncServer."""

    def __init__(self, *args: Any, connect_timeout: float = 45.0, **kwargs: Any) -> None:
        """Accept AsyncServer's options plus `connect_timeout` (seconds to join a namespace)."""
        super().__init__(*args, **kwargs)
        self.connect_timeout = connect_timeout
        self._held: dict[tuple[str, str], list[sio_packet.Packet]] = {}
        self._connect_timers: dict[str, asyncio.Task] = {}

    def _engineio_server_class(self) -> type[CarelineEngine]:
        """Use careline's protocol-conformant Engine.IO server."""
        return CarelineEngine

    def engine_sibling(self) -> CarelineEngine:
        """A bare Engine.IO server with exactly this server's engine settings."""
        return CarelineEngine(**self.eio.options(), logger=self.eio.logger)

    # -- Engine.IO events ------------------------------------------------
    async def _handle_eio_connect(self, eio_sid: str, environ: dict) -> None:
        """Register the session and give it connect_timeout to join a namespace."""
        await super()._handle_eio_connect(eio_sid, environ)
        self._connect_timers[eio_sid] = asyncio.ensure_future(self._connect_deadline(eio_sid))

    async def _connect_deadline(self, eio_sid: str) -> None:
        """Close a session that has not joined any namespace in time."""
        await asyncio.sleep(self.connect_timeout)
        if self._connect_timers.pop(eio_sid, None) is not None:
            await self.eio.close_session(eio_sid)

    def _stop_connect_timer(self, eio_sid: str) -> None:
        """Cancel the connect deadline of a session."""
        task = self._connect_timers.pop(eio_sid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str) -> None:
        """Forget per-session state, then disconnect all namespaces as usual."""
        self._stop_connect_timer(eio_sid)
        for key in [k for k in self._held if k[0] == eio_sid]:
            del self._held[key]
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """Decode, validate and dispatch one Socket.IO packet; invalid ones close the session."""
        pending = self._binary_packet.get(eio_sid)
        if pending is not None:
            if not isinstance(data, bytes):
                return await self.eio.close_session(eio_sid)
            return await super()._handle_eio_message(eio_sid, data)
        pkt = self._decode(data)
        if pkt is None:
            self.logger.info("invalid packet from %s, closing", eio_sid)
            return await self.eio.close_session(eio_sid)
        await self._dispatch(eio_sid, pkt)

    def _decode(self, data: str | bytes) -> sio_packet.Packet | None:
        """Decode a client packet; None unless it is well formed and allowed from a client."""
        if not isinstance(data, str):
            return None
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError, KeyError, IndexError):
            return None
        check = CLIENT_PACKETS.get(pkt.packet_type)
        if check is None or not check(pkt.data):
            return None
        if pkt.attachment_count and pkt.packet_type not in BINARY_PACKETS:
            return None
        return pkt

    async def _dispatch(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        """Route a validated packet to python-socketio's handlers."""
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.attachment_count:
            self._binary_packet[eio_sid] = pkt  # completed by the attachments that follow
        elif kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    # -- namespace connection ----------------------------------------------
    def _namespace_exists(self, namespace: str) -> bool:
        """True if a client may connect to `namespace`."""
        return (
            namespace in self.handlers
            or namespace in self.namespace_handlers
            or self.namespaces == "*"
            or namespace in self.namespaces
        )

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        """Connect to a namespace; what the handler emits is sent after the CONNECT reply."""
        namespace = namespace or "/"
        if not self._namespace_exists(namespace):
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.CONNECT_ERROR, data={"message": "Invalid namespace"}, namespace=namespace))
            return
        key = (eio_sid, namespace)
        self._held[key] = []
        try:
            await super()._handle_connect(eio_sid, namespace, data)
        finally:
            held = self._held.pop(key, [])
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace):
            self._stop_connect_timer(eio_sid)
            for pkt in held:
                await super()._send_packet(eio_sid, pkt)

    async def _send_packet(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        """Send a packet, holding it back while its namespace connection is being accepted."""
        held = self._held.get((eio_sid, pkt.namespace or "/"))
        if held is not None and pkt.packet_type not in CONNECT_REPLIES:
            held.append(pkt)
            return
        await super()._send_packet(eio_sid, pkt)
