"""The fast broadcast path: one encoding for all recipients, order per socket, back-pressure, Redis."""
from __future__ import annotations

import asyncio
import gc
import json
import socket
from typing import Any

import aiohttp
import socketio

from realtime.engine import CarelineSocket
from tests.conformance.conftest import Running, Serve, recv

ROOM = "fanout"


def add_fanout_handlers(running: Running) -> None:
    """`join` enters ROOM; `burst(n, size)` interleaves n broadcasts and n direct emits, then acks."""
    sio = running.sio

    async def join(sid: str, *args: Any) -> bool:
        await sio.enter_room(sid, ROOM, namespace="/")
        return True

    async def burst(sid: str, n: int, size: int = 0) -> str:
        pad = "x" * size
        for i in range(n):
            await sio.emit("seq", {"i": 2 * i, "pad": pad}, room=ROOM, namespace="/")
            await sio.emit("seq", {"i": 2 * i + 1, "pad": pad}, to=sid, namespace="/")
        return "done"

    sio.on("join", join, namespace="/")
    sio.on("burst", burst, namespace="/")


async def raw_socket(running: Running) -> aiohttp.ClientWebSocketResponse:
    """A raw WebSocket connected to namespace `/` (handshake, CONNECT and `auth` event consumed)."""
    ws = await running.ws("/socket.io/")
    assert (await recv(ws)).startswith("0")
    await ws.send_str('40{"token":"t"}')
    assert (await recv(ws)).startswith("40")
    assert (await recv(ws)).startswith('42["auth"')
    return ws


async def read_sequence(ws: aiohttp.ClientWebSocketResponse, count: int, timeout: float = 5.0) -> list[Any]:
    """The next `count` event/ack packets, decoded (pings skipped)."""
    seen = []
    while len(seen) < count:
        data = await recv(ws, timeout)
        assert data is not None, f"closed after {len(seen)} packets"
        seen.append(data)
    return seen


async def test_broadcasts_direct_emits_and_ack_arrive_in_emit_order(slow: Running) -> None:
    add_fanout_handlers(slow)
    ws = await raw_socket(slow)
    other = await raw_socket(slow)
    for sock in (ws, other):
        await sock.send_str('421["join"]')
        assert await recv(sock) == "431[true]"
    await ws.send_str('422["burst",50]')
    frames = await read_sequence(ws, 101)
    assert [json.loads(f[2:])[1]["i"] for f in frames[:100]] == list(range(100))
    assert frames[100] == '432["done"]'
    broadcast = await read_sequence(other, 50)
    assert [json.loads(f[2:])[1]["i"] for f in broadcast] == list(range(0, 100, 2))
    await ws.close()
    await other.close()


async def test_slow_reader_gets_everything_in_order_after_back_pressure(slow: Running) -> None:
    add_fanout_handlers(slow)
    ws = await raw_socket(slow)
    await ws.send_str('421["join"]')
    assert await recv(ws) == "431[true]"
    await ws.send_str('422["burst",300,20000]')  # ~12 MB: far past the transport's high-water mark
    await asyncio.sleep(0.5)  # the client does not read meanwhile: the server must buffer in order
    assert any(sock._backlog for sock in slow.sio.eio.sockets.values())
    frames = await read_sequence(ws, 601, timeout=10)
    assert [json.loads(f[2:])[1]["i"] for f in frames[:600]] == list(range(600))
    assert frames[600] == '432["done"]'
    await ws.close()


def _stop_reading(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Make the client really stop reading: aiohttp's client keeps reading into its own queue whether or not
    the test calls receive(), and loopback receive buffers may grow to tcp_rmem's maximum (32 MB on some
    machines), more than the whole burst; so pause the transport and keep the kernel buffer small."""
    transport = ws._response.connection.transport  # type: ignore[union-attr]
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    transport.pause_reading()


async def test_a_reader_too_far_behind_is_dropped_and_others_are_served(slow: Running) -> None:
    add_fanout_handlers(slow)
    slow.sio.eio.output_backlog_limit = 5_000_000  # the stalled ~12 MB, less ~4 MB in kernel buffers, does not fit
    stalled = await raw_socket(slow)
    reader = await raw_socket(slow)
    for sock in (stalled, reader):
        await sock.send_str('421["join"]')
        assert await recv(sock) == "431[true]"
    _stop_reading(stalled)
    stalled_sids = set(slow.sio.eio.sockets)
    await stalled.send_str('422["burst",300,20000]')  # ~12 MB to a socket that does not read
    broadcast = [json.loads(f[2:])[1]["i"] for f in await read_sequence(reader, 300, timeout=10)]
    assert broadcast == list(range(0, 600, 2))  # a reading member of the room gets every broadcast
    for _ in range(50):
        if len(slow.sio.eio.sockets) == 1:
            break
        await asyncio.sleep(0.1)
    assert len(slow.sio.eio.sockets) == 1  # the stalled session is gone, with its backlog
    assert stalled_sids - set(slow.sio.eio.sockets)
    stalled._response.connection.transport.resume_reading()  # type: ignore[union-attr]
    frames = []
    try:
        while (frame := await recv(stalled, timeout=5)) is not None:  # what got out before the drop, then EOF
            frames.append(frame)
    except aiohttp.ClientError:
        pass  # the connection was reset
    assert '432["done"]' not in frames and len(frames) < 601  # the rest of its output was dropped
    await reader.send_str('423["burst",1]')
    assert len(await read_sequence(reader, 3)) == 3  # the reader's session is unaffected
    await reader.close()


async def test_binary_broadcast_and_polling_recipient(slow: Running) -> None:
    add_fanout_handlers(slow)
    got: asyncio.Queue = asyncio.Queue()
    clients = []
    for transports in (["polling"], ["websocket"]):
        client = socketio.AsyncClient(reconnection=False)
        client.on("bin", lambda *args: got.put_nowait(args))
        await client.connect(slow.base, transports=transports, auth={"token": "t"}, wait_timeout=5)
        assert await client.call("join", timeout=2) is True
        clients.append(client)
    await slow.sio.emit("bin", (b"\x00\x01", {"n": 1}), room=ROOM, namespace="/")
    for _ in clients:
        assert await asyncio.wait_for(got.get(), 3) == (b"\x00\x01", {"n": 1})
    for client in clients:
        await client.disconnect()


async def test_redis_broadcast_keeps_order_on_the_receiving_process(serve: Serve) -> None:
    a = await serve(redis=True, **{"ping_interval": 5.0, "ping_timeout": 5.0})
    b = await serve(redis=True, **{"ping_interval": 5.0, "ping_timeout": 5.0})
    add_fanout_handlers(a)
    ws = await raw_socket(a)
    await ws.send_str('421["join"]')
    assert await recv(ws) == "431[true]"
    await asyncio.sleep(0.3)  # let both managers' listeners subscribe
    for i in range(100):
        await b.sio.emit("seq", {"i": i}, room=ROOM, namespace="/")
    frames = await read_sequence(ws, 100)
    assert [json.loads(f[2:])[1]["i"] for f in frames] == list(range(100))
    await ws.close()


async def test_closed_websockets_leave_no_session_behind(slow: Running) -> None:
    sockets = [await raw_socket(slow) for _ in range(5)]
    for ws in sockets[:3]:
        await ws.send_str("41")
        await ws.close()
    for ws in sockets[3:]:
        await ws.close()
    for _ in range(50):
        if not slow.sio.eio.sockets and not slow.sio.environ:
            break
        await asyncio.sleep(0.05)
    assert slow.sio.eio.sockets == {} and slow.sio.environ == {}
    assert not slow.sio.manager.rooms.get("/", {}).get(None)
    gc.collect()  # nothing (e.g. a monitor task's snapshot of the session table) keeps a closed session alive
    assert not [obj for obj in gc.get_objects() if isinstance(obj, CarelineSocket) and obj.closed]


async def test_rooms_index_follows_enter_leave_and_disconnect(slow: Running) -> None:
    add_fanout_handlers(slow)
    ws = await raw_socket(slow)
    await ws.send_str('421["join"]')
    assert await recv(ws) == "431[true]"
    manager = slow.sio.manager
    (sid,) = [sid for (namespace, sid) in manager._rooms_of if namespace == "/"]
    assert set(slow.sio.rooms(sid, namespace="/")) == {sid, ROOM}
    await slow.sio.leave_room(sid, ROOM, namespace="/")
    assert slow.sio.rooms(sid, namespace="/") == [sid]
    await slow.sio.enter_room(sid, ROOM, namespace="/")
    await ws.close()
    for _ in range(50):
        if not manager._rooms_of:
            break
        await asyncio.sleep(0.05)
    assert manager._rooms_of == {} and ROOM not in manager.rooms.get("/", {})
