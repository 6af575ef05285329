"""The python-socketio client and the Redis client manager still work against careline's server."""
from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.conformance.conftest import Running, Serve


async def roundtrip(running: Running, transports: list[str]) -> None:
    """Connect, receive the auth event, emit with ack, receive an event, disconnect."""
    client = socketio.AsyncClient(reconnection=False)
    auth_seen: asyncio.Future = asyncio.get_running_loop().create_future()
    echoed: asyncio.Queue = asyncio.Queue()
    client.on("auth", lambda data: auth_seen.done() or auth_seen.set_result(data))
    client.on("message-back", lambda *args: echoed.put_nowait(args))
    await client.connect(running.base, transports=transports, auth={"token": "t"}, wait_timeout=5)
    try:
        assert client.transport() == transports[-1]
        assert await asyncio.wait_for(auth_seen, 2) == {"token": "t"}
        assert await client.call("message-with-ack", {"a": [1, 2]}, timeout=2) == {"a": [1, 2]}
        await client.emit("message", b"\x00\x01")
        assert await asyncio.wait_for(echoed.get(), 2) == (b"\x00\x01",)
    finally:
        await client.disconnect()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_python_client_roundtrip(fast: Running, transports: list[str]) -> None:
    await roundtrip(fast, transports)


async def test_python_client_survives_heartbeats(fast: Running) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(fast.base, transports=["polling", "websocket"], wait_timeout=5)
    await asyncio.sleep(1.2)  # several 300 ms ping cycles, past the 1 s connect timeout
    assert client.connected
    assert await client.call("message-with-ack", 7, timeout=2) == 7
    await client.disconnect()


async def test_redis_manager_roundtrip_and_cross_server_emit(serve: Serve) -> None:
    a = await serve(redis=True)
    b = await serve(redis=True)
    assert isinstance(a.sio.manager, socketio.AsyncRedisManager)
    await roundtrip(a, ["polling", "websocket"])
    client = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue = asyncio.Queue()
    client.on("news", lambda data: got.put_nowait(data))
    await client.connect(a.base, transports=["websocket"], wait_timeout=5)
    try:
        await asyncio.sleep(0.3)  # let both managers' listeners subscribe
        await b.sio.emit("news", {"from": "b"})  # published by server b, delivered by server a
        assert await asyncio.wait_for(got.get(), 3) == {"from": "b"}
    finally:
        await client.disconnect()

