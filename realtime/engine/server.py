"""Protocol fixes for the Socket.IO server: packet validation, namespace connect, connect timeout.

All output goes through `CarelineServer.send_eio_nowait` (synchronous, in order), which holds back a
namespace's output while its connection is being accepted (docs/protocol.md, fix 11).
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from errors import AppError, InvalidPayload, RateLimited
from realtime.engine.engine import CarelineEngine
from realtime.engine.inflow import Inflow, InflowLimits, Verdict
from realtime.engine.session import keep
from realtime.engine.session_output import eio_messages
from realtime.engine.wheel import TimerWheel

log = logging.getLogger("careline.realtime")

#: event names a client may not emit (they are reserved by the protocol)
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: pause between a WebSocket CONNECT reply and what the connect handler emitted (see docs/protocol.md)
CONNECT_REPLY_PAUSE = 0.002
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


#: what careline keeps of a connection's HTTP request for namespace connect handlers (python-socketio keeps
#: the whole environ, aiohttp request included, for the life of the connection)
KEPT_ENVIRON = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "HTTP_AUTHORIZATION", "HTTP_ORIGIN",
                "HTTP_COOKIE", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


#: type digit, optional attachment count, optional namespace of an encoded Socket.IO packet
ROUTE = re.compile(r"(\d)(?:\d+-)?(/[^,]*)?")
#: the header of an encoded event: type, attachment count, namespace, ack id, then the JSON array
EVENT_HEADER = re.compile(r"([25])(?:(\d{1,6})-)?(?:(/[^,]{0,256}),)?(\d{1,15})?\[")
#: characters an encoded packet may have beyond its payload (type, namespace, ack id)
HEADER_SLACK = 512
MALFORMED = {"_payload": ["Not valid JSON (malformed, a lone surrogate, or nested too deeply)."]}


@dataclass(frozen=True)
class EventHeader:
    """What can be read of an encoded event without parsing its payload."""

    kind: int
    attachments: int
    namespace: str
    ack_id: int | None


def event_header(encoded: str) -> EventHeader | None:
    """The header of an encoded (binary) event whose payload is a JSON array, else None."""
    match = EVENT_HEADER.match(encoded)
    if match is None:
        return None
    kind, attachments, namespace, ack_id = match.groups()
    return EventHeader(int(kind), int(attachments or 0), namespace or "/", int(ack_id) if ack_id else None)


def route_of(encoded: str) -> tuple[int, str]:
    """The packet type and namespace of an encoded (text) Socket.IO packet."""
    match = ROUTE.match(encoded)
    if match is None:
        return -1, "/"
    return int(match.group(1)), match.group(2) or "/"


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

    def __init__(self, *args: Any, connect_timeout: float = 45.0, inflow: InflowLimits | None = None,
                 **kwargs: Any) -> None:
        """Accept AsyncServer's options plus `connect_timeout` (seconds to join a namespace) and the
        per-connection `inflow` limits."""
        super().__init__(*args, **kwargs)
        self.connect_timeout = connect_timeout
        self.inflow = Inflow(inflow or InflowLimits())
        self._connecting: dict[str, tuple[str, list[eio_packet.Packet]]] = {}
        self._attaching: set[str] = set()
        # sessions that have not joined a namespace yet, on one loop timer (connect_timeout / 20 late at most)
        self._connect_deadlines: TimerWheel[str] = TimerWheel(min(0.5, max(0.005, connect_timeout / 20)),
                                                              self._connect_deadline)

    def _engineio_server_class(self) -> type[CarelineEngine]:
        """Use careline's protocol-conformant Engine.IO server."""
        return CarelineEngine

    def engine_sibling(self) -> CarelineEngine:
        """A bare Engine.IO server with exactly this server's engine settings."""
        return CarelineEngine(**self.eio.options(), logger=self.eio.logger)

    # -- Engine.IO events ------------------------------------------------
    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """Register the session (keeping only KEPT_ENVIRON) and give it connect_timeout to join a namespace."""
        await super()._handle_eio_connect(eio_sid, {key: environ[key] for key in KEPT_ENVIRON if key in environ})
        self._connect_deadlines.add(eio_sid, self.connect_timeout)

    def _connect_deadline(self, eio_sid: str) -> None:
        """Close a session that has not joined any namespace in time."""
        keep(asyncio.ensure_future(self.eio.close_session(eio_sid)))

    def _stop_connect_timer(self, eio_sid: str) -> None:
        """Cancel the connect deadline of a session."""
        self._connect_deadlines.discard(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str) -> None:
        """Forget per-session state, then disconnect all namespaces as usual."""
        self._stop_connect_timer(eio_sid)
        self._connecting.pop(eio_sid, None)
        self._attaching.discard(eio_sid)
        self._binary_packet.pop(eio_sid, None)  # a partial packet of a namespace never connected, too
        self.inflow.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """Admit (rate, size), decode, validate and dispatch one Socket.IO packet.

        A request refused before decoding (over the connection's rate, too large, payload not valid JSON)
        is answered with the error when it asks for an ack; packets that break the protocol close the
        session; a connection that keeps flooding after being refused is closed.
        """
        verdict = self.inflow.admit(eio_sid)
        if verdict is Verdict.KICK:
            log.warning("closing a connection that kept flooding after being rate limited")
            return await self.eio.close_session(eio_sid)
        if isinstance(data, bytes):
            return await self._attachment(eio_sid, data)
        if eio_sid in self._binary_packet or self.inflow.skipping(eio_sid):
            return await self.eio.close_session(eio_sid)  # text where an attachment was due
        if verdict is Verdict.REFUSE:
            return await self._refuse(eio_sid, data, RateLimited(self.inflow.retry_after_ms(eio_sid)))
        if len(data) > self.inflow.limits.max_bytes + HEADER_SLACK:
            return await self._refuse(eio_sid, data, InvalidPayload("The payload is too large",
                                                                    {"_payload": ["Too large."]}))
        pkt = self._decode(data)
        if pkt is not None:
            return await self._dispatch(eio_sid, pkt)
        if self._payload_unreadable(data):
            return await self._refuse(eio_sid, data, InvalidPayload("The payload is not valid JSON", MALFORMED))
        self.logger.info("invalid packet from %s, closing", eio_sid)
        await self.eio.close_session(eio_sid)

    def _payload_unreadable(self, data: str) -> bool:
        """True for an event with a well-formed header whose JSON array does not parse."""
        if event_header(data) is None:
            return False
        try:
            self.packet_class(encoded_packet=data)
        except (ValueError, TypeError):
            return True
        return False

    async def _refuse(self, eio_sid: str, data: str, error: AppError) -> None:
        """Answer an event refused before decoding (when it asks for an ack); skip its attachments."""
        header = event_header(data)
        if header is None:
            return
        if header.attachments:
            self.inflow.skip(eio_sid, header.attachments)
        if header.ack_id is not None and self.manager.sid_from_eio_sid(eio_sid, header.namespace) is not None:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=header.namespace, id=header.ack_id,
                data=[{"ok": False, "error": error.to_dict()}]))

    async def _attachment(self, eio_sid: str, data: bytes) -> None:
        """One binary attachment: discarded, added to the packet being assembled, or a protocol error."""
        if self.inflow.skipping(eio_sid):
            return
        pending = self._binary_packet.get(eio_sid)
        if pending is None:
            return await self.eio.close_session(eio_sid)
        if not self.inflow.take_bytes(eio_sid, len(data)):
            del self._binary_packet[eio_sid]
            self.inflow.skip(eio_sid, pending.attachment_count - len(pending.attachments) - 1)
            return await self._refuse_packet(eio_sid, pending, InvalidPayload(
                "The binary parts are too large", {"_payload": ["Too large."]}))
        await super()._handle_eio_message(eio_sid, data)

    async def _refuse_packet(self, eio_sid: str, pkt: sio_packet.Packet, error: AppError) -> None:
        if pkt.id is not None:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=pkt.namespace, id=pkt.id, data=[{"ok": False, "error": error.to_dict()}]))

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
            await self._start_binary(eio_sid, pkt)
        elif kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]) -> None:
        """Run a client event: in a task of its own (upstream), or, when its namespace lists it in `ordered_events`,
        in the connection's reader, so that the socket's later packets wait for it (in order, no task per event)."""
        namespace = namespace or "/"
        handler = self.namespace_handlers.get(namespace)
        if data[0] not in getattr(handler, "ordered_events", ()):
            return await super()._handle_event(eio_sid, namespace, id, data)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if self.manager.is_connected(sid, namespace):
            await self._handle_event_internal(self, sid, eio_sid, data, namespace, id)

    async def _start_binary(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        """Assemble a binary packet from the attachments that follow, within the inflow limits; one for a
        namespace this socket has not connected, or with too many attachments, is not buffered."""
        connected = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/") is not None
        if connected and self.inflow.attachments_allowed(pkt.attachment_count):
            self.inflow.start_binary(eio_sid)
            self._binary_packet[eio_sid] = pkt
            return
        self.inflow.skip(eio_sid, pkt.attachment_count)
        if connected:
            await self._refuse_packet(eio_sid, pkt, InvalidPayload(
                "Too many binary parts", {"_payload": [f"At most {self.inflow.limits.max_attachments} binary parts."]}))

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
        held: list[eio_packet.Packet] = []
        self._connecting[eio_sid] = (namespace, held)
        try:
            await super()._handle_connect(eio_sid, namespace, data)
        finally:
            self._connecting.pop(eio_sid, None)
            self._attaching.discard(eio_sid)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace):
            self._stop_connect_timer(eio_sid)
            if held:
                await self.eio.flush(eio_sid, CONNECT_REPLY_PAUSE)  # CONNECT reply goes out alone
            for pkt in held:
                self.send_eio_nowait(eio_sid, pkt)

    async def _send_packet(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        """Send a Socket.IO packet as Engine.IO messages (all output goes through send_eio_nowait)."""
        for part in eio_messages(pkt.encode()):
            self.send_eio_nowait(eio_sid, part)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: eio_packet.Packet) -> None:
        """Send an Engine.IO packet (see send_eio_nowait)."""
        self.send_eio_nowait(eio_sid, eio_pkt)

    def send_eio_nowait(self, eio_sid: str, eio_pkt: eio_packet.Packet) -> None:
        """Send an Engine.IO packet in order, holding it back while its namespace connection is pending."""
        state = self._connecting.get(eio_sid)
        if state is not None and self._must_hold(eio_sid, state[0], eio_pkt):
            state[1].append(eio_pkt)
            return
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            sock.send_nowait(eio_pkt)

    def _must_hold(self, eio_sid: str, connecting: str, eio_pkt: eio_packet.Packet) -> bool:
        """True for output to the namespace being connected, other than the connect reply."""
        data = eio_pkt.data
        if eio_pkt.packet_type != eio_packet.MESSAGE:
            return False
        if isinstance(data, (bytes, bytearray)):
            return eio_sid in self._attaching  # an attachment follows its header packet
        kind, namespace = route_of(data)
        hold = namespace == connecting and kind not in CONNECT_REPLIES
        if hold and kind in BINARY_PACKETS:
            self._attaching.add(eio_sid)
        else:
            self._attaching.discard(eio_sid)
        return hold
