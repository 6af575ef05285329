"""Engine.IO over WebSocket, and the polling -> WebSocket upgrade, over real connections."""
from __future__ import annotations

import asyncio

from tests.conformance.conftest import Running, recv, wait_closed


async def test_websocket_echoes_text_and_binary(slow: Running) -> None:
    ws = await slow.ws()
    assert (await recv(ws)).startswith("0")
    await ws.send_str("4hello")
    assert await recv(ws) == "4hello"
    await ws.send_bytes(b"\x01\x02\x03")
    assert await recv(ws) == b"\x01\x02\x03"
    await ws.close()


async def test_invalid_packet_closes_websocket_at_once(slow: Running) -> None:
    ws = await slow.ws()
    await recv(ws)
    await ws.send_str("abc")
    await wait_closed(ws, timeout=1.0)  # heartbeat is 5 s: this is the invalid-packet path


async def test_close_packet_closes_websocket(slow: Running) -> None:
    ws = await slow.ws()
    await recv(ws)
    await ws.send_str("1")
    await wait_closed(ws, timeout=1.0)
    await asyncio.sleep(0.05)
    assert not slow.echo.sockets


async def test_websocket_ping_pong_and_timeout(fast: Running) -> None:
    ws = await fast.ws()
    await recv(ws)
    for _ in range(2):
        assert await recv(ws, skip_pings=False) == "2"
        await ws.send_str("3")
    assert await recv(ws, skip_pings=False) == "2"
    frames = await wait_closed(ws, timeout=1.0)  # no PONG this time
    assert frames in ([], ["1"])


async def upgrade(running: Running, sid: str, complete: bool = True):
    """Probe a WebSocket for a polling session, optionally completing the upgrade."""
    ws = await running.ws(sid=sid)
    await ws.send_str("2probe")
    assert await recv(ws) == "3probe"
    if complete:
        await ws.send_str("5")
    return ws


async def test_upgrade_ends_pending_poll_with_noop(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    pending = asyncio.ensure_future(slow.get(sid))
    await asyncio.sleep(0.05)
    ws = await upgrade(slow, sid, complete=False)
    assert await asyncio.wait_for(pending, 1) == (200, "6")
    assert await slow.get(sid) == (200, "6")  # a poll during the upgrade is a NOOP too
    await ws.send_str("5")
    await ws.send_str("4hello")
    assert await recv(ws) == "4hello"  # no stray NOOP leaks onto the WebSocket
    await ws.close()


async def test_polling_is_refused_after_upgrade(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    ws = await upgrade(slow, sid)
    assert (await slow.get(sid))[0] == 400
    assert (await slow.post(sid, "4x"))[0] == 400
    await ws.send_str("4still-open")
    assert await recv(ws) == "4still-open"
    await ws.close()


async def test_second_websocket_for_upgraded_session_is_closed(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    ws = await upgrade(slow, sid)
    await asyncio.sleep(0.05)
    second = await slow.ws(sid=sid)  # handshake accepted ...
    await wait_closed(second, timeout=1.0)  # ... then closed
    await ws.send_str("4hello")
    assert await recv(ws) == "4hello"
    await ws.close()


async def test_second_websocket_during_upgrade_is_closed(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    ws = await upgrade(slow, sid, complete=False)
    second = await slow.ws(sid=sid)
    await wait_closed(second, timeout=1.0)
    await ws.send_str("5")
    await ws.send_str("4ok")
    assert await recv(ws) == "4ok"
    await ws.close()
