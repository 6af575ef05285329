"""`signal` between two server processes sharing Redis: a trickle mixing candidates with offers and answers (whose
negotiation limit may wait on Redis) arrives in the order sent, only at its recipient, and a whole 64 KiB SDP
crosses intact (the Redis channel is read and written by careline's lean connections, stores/redis_channel.py)."""
from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import StartServer
from tests.meetings.helpers import booked_meeting, in_room

TRICKLE = 90  # signals, sent without waiting for their acks; every ninth is an offer or an answer


def _signal(meeting_id: str, to: str, n: int) -> dict[str, Any]:
    if n % 9 == 0:
        return {"meetingId": meeting_id, "to": to, "type": "offer" if n % 2 else "answer", "payload": f"v=0 sdp {n}"}
    return {"meetingId": meeting_id, "to": to, "type": "candidate",
            "payload": {"candidate": f"candidate:{n} 1 udp 1 127.0.0.1 {5000 + n} typ host", "sdpMid": "0"}}


async def test_a_trickle_across_processes_arrives_in_order_and_only_at_its_recipient(
        start_server: StartServer) -> None:
    one, two = await start_server(redis=True), await start_server(redis=True)
    session = await booked_meeting(one, two)
    h, g = await in_room(one, session, guest_server=two)
    sent = [_signal(session.meeting_id, "t1", n) for n in range(TRICKLE)]
    acks = await asyncio.gather(*(g.call("signal", signal) for signal in sent))
    assert all(ack["ok"] for ack in acks), [ack for ack in acks if not ack["ok"]]
    for _ in range(100):
        if len(h.events["signal"]) >= TRICKLE:
            break
        await asyncio.sleep(0.05)
    got = h.events["signal"]
    assert [(s["type"], s["payload"]) for s in got] == [(s["type"], s["payload"]) for s in sent]
    assert all(s["from"] == "c1" and s["meetingId"] == session.meeting_id for s in got)
    await g.absent("signal", within=0.2)


async def test_a_whole_sdp_crosses_processes_intact_both_ways(start_server: StartServer) -> None:
    one, two = await start_server(redis=True), await start_server(redis=True)
    session = await booked_meeting(one, two)
    h, g = await in_room(one, session, guest_server=two)
    offer = "v=0\r\n" + "o" * (64 * 1024 - 5)
    answer = "v=0\r\n" + "a" * (64 * 1024 - 5)
    await h.ok("signal", {"meetingId": session.meeting_id, "to": "c1", "type": "offer", "payload": offer})
    assert (await g.expect("signal"))["payload"] == offer
    await g.ok("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "answer", "payload": answer})
    assert (await h.expect("signal"))["payload"] == answer
    await h.absent("signal", within=0.2)
