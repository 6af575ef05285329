"""Socket.IO protocol behaviour of careline's server, over real WebSocket and polling connections."""
from __future__ import annotations

import asyncio
import json

from tests.conformance.conftest import Running, Serve, recv, wait_closed


async def sio_ws(running: Running):
    """A raw WebSocket to /socket.io/ with the Engine.IO handshake consumed."""
    ws = await running.ws("/socket.io/")
    assert (await recv(ws)).startswith("0")
    return ws


async def test_connect_reply_precedes_connect_handler_output(slow: Running) -> None:
    ws = await sio_ws(slow)
    await ws.send_str('40{"token":"123"}')
    first = await recv(ws)
    assert first.startswith("40") and set(json.loads(first[2:])) == {"sid"}
    assert await recv(ws) == '42["auth",{"token":"123"}]'
    await ws.send_str("40/custom,")
    assert (await recv(ws)).startswith("40/custom,")
    assert await recv(ws) == '42/custom,["auth",{}]'
    await ws.close()


async def test_connect_reply_precedes_handler_output_over_polling(slow: Running) -> None:
    sid, _ = await slow.open_polling("/socket.io/")
    assert (await slow.post(sid, "40", "/socket.io/"))[0] == 200
    status, body = await slow.get(sid, "/socket.io/")
    packets = body.split("\x1e")
    while len(packets) < 2:
        packets += (await slow.get(sid, "/socket.io/"))[1].split("\x1e")
    assert status == 200 and packets[0].startswith("40") and packets[1] == '42["auth",{}]'


async def test_unknown_namespace_gets_invalid_namespace_error(slow: Running) -> None:
    ws = await sio_ws(slow)
    await ws.send_str("40/random")
    assert await recv(ws) == '44/random,{"message":"Invalid namespace"}'
    await ws.send_str("40")  # the session stays usable
    assert (await recv(ws)).startswith("40")
    await ws.close()


async def test_rejected_connect_sends_only_the_error(serve: Serve) -> None:
    running = await serve(ping_interval=5.0, ping_timeout=5.0, connect_timeout=5.0)

    async def refuse(sid: str, environ: dict, auth: object = None) -> bool:
        await running.sio.emit("leak", "secret", to=sid, namespace="/private")
        return False

    running.sio.on("connect", refuse, namespace="/private")
    ws = await sio_ws(running)
    await ws.send_str("40")
    await recv(ws), await recv(ws)
    await ws.send_str("40/private,")
    assert (await recv(ws)).startswith("44/private,")
    await ws.send_str('42["message","after"]')
    assert await recv(ws) == '42["message-back","after"]'  # nothing held back leaks out
    await ws.close()


async def test_events_acks_and_binary(slow: Running) -> None:
    ws = await sio_ws(slow)
    await ws.send_str("40")
    await recv(ws), await recv(ws)
    await ws.send_str('42["message",1,"2",{"3":[true]}]')
    assert await recv(ws) == '42["message-back",1,"2",{"3":[true]}]'
    await ws.send_str('42456["message-with-ack",1,"2"]')
    assert await recv(ws) == '43456[1,"2"]'
    await ws.send_str('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await ws.send_bytes(b"\x01")
    await ws.send_bytes(b"\x02")
    assert await recv(ws) == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert [await recv(ws), await recv(ws)] == [b"\x01", b"\x02"]
    await ws.close()


async def test_client_disconnect_keeps_engine_session(fast: Running) -> None:
    ws = await sio_ws(fast)
    await ws.send_str("40")
    await recv(ws), await recv(ws)
    await ws.send_str("41")
    assert await recv(ws, skip_pings=False) == "2"  # nothing but the next PING


async def assert_closes(running: Running, packet: str, connect: bool = True) -> None:
    """Send `packet` (after a namespace connect) and expect the session to close at once."""
    ws = await sio_ws(running)
    if connect:
        await ws.send_str("40")
        await recv(ws), await recv(ws)
    await ws.send_str(packet)
    await wait_closed(ws, timeout=1.0)  # heartbeat is 5 s: this is the invalid-packet path


async def test_invalid_packets_close_the_session(slow: Running) -> None:
    await assert_closes(slow, "4abc", connect=False)  # invalid handshake
    await assert_closes(slow, "4abc")  # unknown packet type
    await assert_closes(slow, "42{}")  # payload is not an array
    await assert_closes(slow, '42abc["message-with-ack",1]')  # invalid ack id
    await assert_closes(slow, '42["disconnect"]')  # reserved event name
    await assert_closes(slow, "44{}")  # CONNECT_ERROR is server-only
    await assert_closes(slow, '41"x"')  # DISCONNECT carries no payload


async def test_connect_timeout_closes_idle_session(serve: Serve) -> None:
    running = await serve(ping_interval=5.0, ping_timeout=5.0, connect_timeout=0.3)
    ws = await sio_ws(running)
    await wait_closed(ws, timeout=1.5)
    ws = await sio_ws(running)
    await ws.send_str("40")
    await recv(ws), await recv(ws)
    await asyncio.sleep(0.5)
    await ws.send_str('42["message","alive"]')
    assert await recv(ws) == '42["message-back","alive"]'
    await ws.close()
