"""Malformed and oversized input from a raw WebSocket: answered `invalid_payload` / `rate_limited`, never
`internal`, never a dropped connection, never memory held (issue 17, items 1-5)."""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from server import SIO
from tests.conftest import RunningServer, StartServer
from tests.hostile.raw import RawSocket

NS = "/chat"


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[RawSocket]:
    socket = await RawSocket.open(server)
    await socket.connect(NS, server.token("ann"))
    yield socket
    await socket.close()


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors


async def still_serves(raw: RawSocket, ack_id: int = 900) -> None:
    envelope = await raw.request(NS, ack_id, '["conversation:list",{}]')
    assert envelope["ok"] is True, envelope


def refused(envelope: dict, code: str = "invalid_payload") -> dict:
    assert envelope["ok"] is False and envelope["error"]["code"] == code, envelope
    return envelope["error"]  # type: ignore[no-any-return]


async def test_attachments_for_an_unconnected_namespace_are_not_buffered(server: RunningServer) -> None:
    socket = await RawSocket.open(server)
    before = rss_bytes()
    await socket.send('451300-/chat,9["conversation:list",{"_placeholder":true,"num":0}]')
    chunk = b"\0" * 900_000
    for _ in range(300):
        await socket.send(chunk)
    await socket.send("2")  # a ping-sized text frame: answered only once every attachment was read
    sio = server.app[SIO]
    assert not sio._binary_packet
    grown = rss_bytes() - before
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"
    await socket.close()


async def test_binary_parts_are_refused_where_no_schema_takes_them(raw: RawSocket) -> None:
    await raw.send('451-/chat,3["conversation:list",{"x":{"_placeholder":true,"num":0}}]')
    await raw.send(b"\x01\x02\x03")
    error = refused(await raw.ack(NS, 3))
    assert error["details"] == {"_payload": ["Binary data is not accepted."]}
    await still_serves(raw)


async def test_too_many_or_too_large_attachments_are_refused_and_skipped(raw: RawSocket) -> None:
    await raw.send('459-/chat,4["conversation:list",' + ",".join(
        f'{{"_placeholder":true,"num":{n}}}' for n in range(9)) + "]")
    for _ in range(9):
        await raw.send(b"x" * 10)
    assert "At most 8" in refused(await raw.ack(NS, 4))["details"]["_payload"][0]
    await raw.send('452-/chat,5["conversation:list",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await raw.send(b"x" * 40_000)
    await raw.send(b"x" * 40_000)
    assert refused(await raw.ack(NS, 5))["details"] == {"_payload": ["Too large."]}
    await still_serves(raw)
    assert not raw.closed


@pytest.mark.parametrize(("depth", "reason"), [(40, "Nested more than 32 levels deep."),
                                                (300, "Nested more than 32 levels deep."),
                                                (2000, "Not valid JSON")])
async def test_deep_nesting_is_refused_without_recursion(raw: RawSocket, depth: int, reason: str) -> None:
    body = '["conversation:list",{"a":' + "[" * depth + "]" * depth + "}]"
    error = refused(await raw.request(NS, 6, body))
    assert error["details"]["_payload"][0].startswith(reason)
    await still_serves(raw)


async def test_a_lone_surrogate_is_refused_and_the_connection_stays(raw: RawSocket) -> None:
    body = '["message:send",{"conversationId":"c1","text":"I am not ok \\ud83d","requestId":"r1"}]'
    error = refused(await raw.request(NS, 7, body))
    assert error["details"]["_payload"][0].startswith("Not valid JSON")
    await still_serves(raw)


async def test_event_names_that_are_not_strings_are_refused(raw: RawSocket) -> None:
    error = refused(await raw.request(NS, 8, "[123,{}]"))
    assert error["details"] == {"event": ["Must be a string."]}
    await still_serves(raw)


async def test_oversized_text_is_refused_before_it_is_decoded(raw: RawSocket) -> None:
    body = '["message:send",{"text":"' + "x" * 70_000 + '"}]'
    assert refused(await raw.request(NS, 9, body))["details"] == {"_payload": ["Too large."]}
    await still_serves(raw)


async def test_unknown_events_share_one_rate_limit(start_server: StartServer) -> None:
    server = await start_server(rate_limit_burst=5, rate_limit_per_second=0.1)
    socket = await RawSocket.open(server)
    await socket.connect(NS, server.token("ann"))
    codes = [(await socket.request(NS, n, f'["nope:{n}",{{}}]'))["error"]["code"] for n in range(7)]
    assert codes == ["invalid_payload"] * 5 + ["rate_limited"] * 2
    await socket.close()


async def test_a_connection_that_keeps_flooding_is_closed(start_server: StartServer) -> None:
    server = await start_server(connection_rate_per_second=5, connection_rate_burst=10)
    socket = await RawSocket.open(server)
    await socket.connect(NS, server.token("ann"))
    other = await server.client("bob", "client", NS)
    codes = [(await socket.request(NS, n, '["conversation:list",{}]'))["ok"] for n in range(12)]
    assert codes[:9] == [True] * 9 and codes[-1] is False
    for n in range(1100):
        await socket.send(f'42{NS},{100 + n}["conversation:list",{{}}]')
    while await socket.recv(timeout=5) is not None:
        pass
    assert socket.closed
    assert (await other.ok("conversation:list", {})) is not None  # the other user was never limited
    await socket.close()


async def test_a_request_from_a_socket_gone_meanwhile_is_unauthorized(server: RunningServer) -> None:
    namespace = server.app[SIO].namespace_handlers[NS]
    envelope = await namespace.handle_request("conversation:list", "no-such-sid", ({},))
    assert refused(envelope, "unauthorized")


async def test_malformed_packets_that_break_the_protocol_still_close(server: RunningServer) -> None:
    socket = await RawSocket.open(server)
    await socket.connect(NS, server.token("ann"))
    await socket.send('4' + json.dumps("not a packet"))
    assert await socket.recv() in ("1", None)  # Engine.IO close, then the WebSocket closes
    assert await socket.recv() is None
    await socket.close()
