"""JsonPacket encodes exactly as python-socketio's Packet does, and leaves binary payloads to it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from socketio import packet

from realtime.engine import JsonPacket
from realtime.server import OrjsonCodec


class StockPacket(packet.Packet):
    json = OrjsonCodec


@pytest.mark.parametrize("kind,data,namespace,ack_id", [
    (packet.EVENT, ["message:created", {"text": "héllo", "n": 1, "at": datetime(2026, 1, 2, tzinfo=timezone.utc),
                                        "list": [None, True, 1.5], "nested": {"k": []}}], "/chat", None),
    (packet.EVENT, ["x", {"a": 1}], "/", 7),
    (packet.ACK, [{"ok": True, "data": {"id": "m1"}}], "/chat", 12),
    (packet.CONNECT, {"sid": "abc"}, "/chat", None),
    (packet.CONNECT_ERROR, {"message": "no"}, "/booking", None),
    (packet.DISCONNECT, None, "/chat", None),
])
def test_text_packets_encode_as_the_stock_packet_does(kind: int, data: Any, namespace: str,
                                                      ack_id: int | None) -> None:
    ours = JsonPacket(kind, data=data, namespace=namespace, id=ack_id)
    stock = StockPacket(kind, data=data, namespace=namespace, id=ack_id)
    assert ours.packet_type == stock.packet_type
    assert ours.encode() == stock.encode()


@pytest.mark.parametrize("kind,binary_kind", [(packet.EVENT, packet.BINARY_EVENT), (packet.ACK, packet.BINARY_ACK)])
def test_binary_payloads_take_the_stock_path(kind: int, binary_kind: int) -> None:
    data = ["upload", {"name": "a.png", "bytes": b"\x89PNG"}]
    ours = JsonPacket(kind, data=data, namespace="/chat", id=3)
    stock = StockPacket(kind, data=data, namespace="/chat", id=3)
    assert ours.packet_type == binary_kind
    assert ours.encode() == stock.encode()
    assert ours.encode()[1] == b"\x89PNG"
