"""Engine.IO long-polling: messages, session closing and heartbeat, over real HTTP."""
from __future__ import annotations

import asyncio

from tests.conformance.conftest import Running


async def test_post_answers_ok_and_messages_are_echoed(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    assert await slow.post(sid, "4hello\x1e4world\x1ebAQIDBA==") == (200, "ok")
    assert await slow.get(sid) == (200, "4hello\x1e4world\x1ebAQIDBA==")


async def test_invalid_packet_closes_session(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    status, _ = await slow.post(sid, "abc")
    assert status == 400
    assert (await slow.get(sid))[0] == 400
    assert sid not in slow.echo.sockets


async def test_unknown_packet_type_closes_session(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    assert (await slow.post(sid, "9x"))[0] == 400
    assert (await slow.get(sid))[0] == 400


async def test_duplicate_poll_closes_session(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    first = asyncio.ensure_future(slow.get(sid))
    await asyncio.sleep(0.05)
    second = await slow.get(sid)
    assert second[0] == 400
    assert await first == (200, "1")  # the pending poll receives the CLOSE packet
    assert (await slow.get(sid))[0] == 400


async def test_pending_poll_gets_noop_when_client_closes(slow: Running) -> None:
    sid, _ = await slow.open_polling()
    pending = asyncio.ensure_future(slow.get(sid))
    await asyncio.sleep(0.05)
    assert (await slow.post(sid, "1"))[0] == 200
    assert await asyncio.wait_for(pending, 1) == (200, "6")
    assert (await slow.get(sid))[0] == 400


async def test_ping_pong_keeps_session_open(fast: Running) -> None:
    sid, _ = await fast.open_polling()
    for _ in range(3):
        assert await fast.get(sid) == (200, "2")
        assert await fast.post(sid, "3") == (200, "ok")
    assert sid in fast.echo.sockets


async def test_missed_pong_closes_session_and_frees_it(fast: Running) -> None:
    sid, _ = await fast.open_polling()
    await asyncio.sleep(0.3 + 0.2 + 0.3)  # interval + timeout, plus slack for a loaded machine
    assert (await fast.get(sid))[0] == 400
    assert sid not in fast.echo.sockets  # no leaked session


async def test_idle_session_is_dropped_without_any_request(fast: Running) -> None:
    sids = [(await fast.open_polling())[0] for _ in range(5)]
    await asyncio.sleep(0.3 + 0.2 + 0.3)  # slack for a loaded machine
    assert not set(sids) & set(fast.echo.sockets)


async def test_pending_poll_receives_close_on_ping_timeout(fast: Running) -> None:
    sid, _ = await fast.open_polling()
    assert await fast.get(sid) == (200, "2")  # ping, deliberately not answered
    assert await asyncio.wait_for(fast.get(sid), 1) == (200, "1")
    assert (await fast.get(sid))[0] == 400
