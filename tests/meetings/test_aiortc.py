"""Two aiortc peers on two server processes (sharing Redis) meet through careline's lobby and signaling."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rest.app_keys import MONGO_DB
from tests.conftest import StartServer
from tests.meetings.helpers import NS, START, booked_meeting, in_room, until
from tests.meetings.peers import Peer, rtc_config

pytestmark = pytest.mark.slow


async def _audio_flows(peer: Peer) -> None:
    track = await asyncio.wait_for(peer.tracks.get(), 20)
    assert track.kind == "audio"
    frame = await asyncio.wait_for(track.recv(), 20)
    assert frame.samples > 0


async def _round_trip(sender: Peer, receiver: Peer, text: str) -> None:
    await sender.channel_open()
    sender.channel.send(text)
    assert await asyncio.wait_for(receiver.messages.get(), 20) == text


async def test_two_processes_data_channel_audio_and_ice_restart_after_reconnect(start_server: StartServer) -> None:
    one = await start_server(redis=True)
    two = await start_server(redis=True)
    session = await booked_meeting(one, two)
    h, g = await in_room(one, session, guest_server=two)
    host_ice = (await h.ok("meeting:join", {"meetingId": session.meeting_id}))["iceServers"]
    admitted = await g.ok("meeting:join", {"meetingId": session.meeting_id})
    assert admitted["status"] == "admitted"
    host = Peer(h, session.meeting_id, "c1", rtc_config(host_ice))
    guest = Peer(g, session.meeting_id, "t1", rtc_config(admitted["iceServers"]))
    try:
        guest.follow()
        host.follow(restart_offers=True)
        await host.offer()
        await asyncio.gather(host.connected(), guest.connected())
        await _round_trip(host, guest, "hello from the therapist")
        await _round_trip(guest, host, "hello back")
        await _audio_flows(guest)

        # The client's socket drops (its network changed): the seat waits, a new socket rejoins without
        # the lobby, and a `restart` signal renegotiates ICE on a fresh connection.
        await g.disconnect()
        seats = one.app[MONGO_DB]["meeting_seats"]
        async def away() -> bool:
            return (await seats.find_one({"userId": "c1"})).get("awaySince") is not None

        await until(away, 5)
        session.move(START + timedelta(seconds=15))  # within MEETING_RECONNECT_SECONDS
        await one.meetings.closer.tick()
        await h.absent("participant:left", within=0.2)
        g2 = await two.client("c1", "client", NS)
        again = await g2.ok("meeting:join", {"meetingId": session.meeting_id})
        assert again["status"] == "admitted" and again["iceServers"]
        await guest.replace_socket(g2)
        guest.follow()
        await g2.ok("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "restart", "payload": {}})
        await asyncio.gather(host.connected(), guest.connected())
        await _round_trip(host, guest, "still there?")
        await _round_trip(guest, host, "yes")
        await _audio_flows(guest)
    finally:
        await host.close()
        await guest.close()
