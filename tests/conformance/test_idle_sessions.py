"""Idle sessions hold no per-socket timer, read or room of their own, and memory goes back after a close wave."""
from __future__ import annotations

import asyncio

from tests.conformance.conftest import Running, recv
from tests.conformance.test_fanout import add_fanout_handlers, raw_socket


async def test_idle_websocket_sessions_share_the_heartbeat_and_answer_in_order(slow: Running) -> None:
    add_fanout_handlers(slow)
    sockets = [await raw_socket(slow) for _ in range(5)]
    engine = slow.sio.eio
    assert len(engine.heartbeats) == 5  # one wheel entry each, no call_later per socket
    assert not any(task.get_coro().__qualname__.endswith("_ws_reader") for task in asyncio.all_tasks())
    for sock in engine.sockets.values():
        assert sock._inbox is None  # no read in progress while idle
    assert all(sid not in slow.sio.manager.rooms["/"] for sid in slow.sio.manager.rooms["/"][None])
    ws = sockets[0]
    for ack_id in range(1, 6):  # sent back to back: delivered from the parser, answered in order
        await ws.send_str(f'42{ack_id}["join"]')
    assert [await recv(ws, 2.0) for _ in range(5)] == [f"43{ack_id}[true]" for ack_id in range(1, 6)]


async def test_a_wave_of_closes_returns_free_memory(slow: Running) -> None:
    engine = slow.sio.eio
    engine.released.every, engine.released.delay = 4, 0.05
    sockets = [await raw_socket(slow) for _ in range(4)]
    for ws in sockets:
        await ws.close()
    for _ in range(40):
        if engine.released.releases:
            break
        await asyncio.sleep(0.05)
    assert engine.released.releases == 1 and not engine.sockets
