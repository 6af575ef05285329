"""Speed path: the Socket.IO packet careline sends, its JSON payload encoded once, by orjson.

python-socketio's `Packet` walks every payload in Python to find binary parts (a recursive
`reduce` over each list and dict) and then encodes it again in `encode()`. Here orjson encodes
the payload when the packet is made: it refuses `bytes`, so a payload it encodes holds no binary
part, and that encoding is what `encode()` sends. Payloads with binary parts (or anything orjson
cannot encode) take the stock path unchanged.
"""
from __future__ import annotations

from typing import Any

import orjson
from socketio import packet

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS  # as realtime.server.OrjsonCodec
TEXT_TYPES = (packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK, packet.CONNECT_ERROR)


class JsonPacket(packet.Packet):
    """A Socket.IO packet whose JSON payload is encoded once, when it is made."""

    def __init__(self, packet_type: int = packet.EVENT, data: Any = None, namespace: str | None = None,
                 id: int | None = None, binary: bool | None = None, encoded_packet: Any = None) -> None:
        """As `socketio.packet.Packet`."""
        self._json: str | None = None
        if binary is None and encoded_packet is None and data is not None:
            try:
                self._json = orjson.dumps(data, option=JSON_OPTIONS).decode()
                binary = False
            except TypeError:  # bytes somewhere (or a type orjson does not know): the stock check decides
                pass
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self) -> Any:
        """The encoded packet; the stock encoder for binary packets."""
        if self._json is None or self.packet_type not in TEXT_TYPES:
            return super().encode()
        head = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            head += self.namespace + ","
        if self.id is not None:
            head += str(self.id)
        return head + self._json
