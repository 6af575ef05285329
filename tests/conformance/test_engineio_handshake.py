"""Engine.IO handshake and request validation, over real HTTP and WebSocket connections."""
from __future__ import annotations

import json

import pytest

from tests.conformance.conftest import Running, Serve, recv


async def test_polling_handshake_reports_exact_sub_second_timing(fast: Running) -> None:
    _sid, handshake = await fast.open_polling()
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert handshake["pingInterval"] == 300  # upstream truncates 0.3 s to 0
    assert handshake["pingTimeout"] == 200
    assert handshake["maxPayload"] == 1_000_000
    assert handshake["upgrades"] == ["websocket"]


async def test_sub_second_ping_interval_is_not_truncated(serve: Serve) -> None:
    running = await serve(ping_interval=0.35, ping_timeout=0.2)
    _, handshake = await running.open_polling()
    assert handshake["pingInterval"] == 350


async def test_socketio_endpoint_uses_same_engine(fast: Running) -> None:
    _, handshake = await fast.open_polling("/socket.io/")
    assert handshake["pingInterval"] == 300 and handshake["pingTimeout"] == 200


async def test_websocket_handshake_offers_no_upgrades(fast: Running) -> None:
    ws = await fast.ws()
    data = await recv(ws)
    assert data.startswith("0")
    assert json.loads(data[1:])["upgrades"] == []
    await ws.close()


async def test_websocket_is_served_without_permessage_deflate(fast: Running) -> None:
    ws = await fast.http.ws_connect(fast.url(EIO="4", transport="websocket").replace("http", "ws", 1), compress=15)
    assert ws.compress == 0
    await ws.close()


@pytest.mark.parametrize(
    "query",
    [
        {"EIO": "4"},  # no transport: upstream defaults to polling and answers 200
        {"EIO": "4", "transport": "abc"},
        {"transport": "polling"},
        {"EIO": "abc", "transport": "polling"},
    ],
)
async def test_invalid_handshake_query_is_400(fast: Running, query: dict) -> None:
    async with fast.http.get(fast.url(**query)) as resp:
        assert resp.status == 400


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_handshake_with_wrong_method_is_400(fast: Running, method: str) -> None:
    async with fast.http.request(method, fast.url(EIO="4", transport="polling")) as resp:
        assert resp.status == 400


async def test_unknown_sid_is_400(fast: Running) -> None:
    assert (await fast.get("nope"))[0] == 400
    assert (await fast.post("nope", "4hi"))[0] == 400
