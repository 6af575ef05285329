"""The python-socketio client and the Redis client manager still work against careline's server."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import socketio

from conftest import Running, Serve

REDIS_URL = "redis://127.0.0.1:6379/0"


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


async def redis_available() -> bool:
    """True if a Redis server answers on 127.0.0.1:6379."""
    import redis.asyncio as aioredis

    conn = aioredis.from_url(REDIS_URL)
    try:
        return bool(await asyncio.wait_for(conn.ping(), 1))
    except Exception:
        return False
    finally:
        await conn.aclose()


async def test_redis_manager_roundtrip_and_cross_server_emit(serve: Serve) -> None:
    if not await redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    channel = f"careline-conformance-{uuid.uuid4().hex}"
    a = await serve(client_manager=socketio.AsyncRedisManager(REDIS_URL, channel=channel))
    b = await serve(client_manager=socketio.AsyncRedisManager(REDIS_URL, channel=channel))
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
        for running in (a, b):
            await running.sio.shutdown()
