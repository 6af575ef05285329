"""A real coturn (use-auth-secret) relays two aiortc peers with careline's credentials and refuses bad ones."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

import pytest

from clock import iso
from handlers.meetings.access import turn_credential
from tests.booking.helpers import fix_clock
from tests.conftest import RunningServer, StartServer
from tests.conftest import test_now as now_for_tests
from tests.meetings.conftest import TURN_SECRET as SECRET
from tests.meetings.helpers import NS
from tests.meetings.peers import Peer, rtc_config, split_sdp

pytestmark = pytest.mark.slow


async def _meeting_now(server: RunningServer) -> tuple[str, Any, Any, datetime]:
    """An ad hoc meeting starting at the real time (coturn checks expiries against it); both in."""
    now = now_for_tests().replace(microsecond=0)
    fix_clock(server, now=now)
    h = await server.client("t1", "therapist", NS)
    g = await server.client("c1", "client", NS)
    meeting = await h.ok("meeting:create", {"participantIds": ["c1"], "start": iso(now), "requestId": "m1",
                                            "end": iso(now + timedelta(minutes=50))})
    await h.ok("meeting:join", {"meetingId": meeting["id"]})
    await g.ok("meeting:join", {"meetingId": meeting["id"]})
    await h.ok("lobby:admit", {"meetingId": meeting["id"], "userId": "c1"})
    return meeting["id"], h, g, now


def _turn(servers: list[dict[str, Any]]) -> dict[str, Any]:
    [turn] = [s for s in servers if s["urls"][0].startswith("turn:")]
    return turn


async def test_relay_only_peers_connect_through_coturn_with_careline_credentials(
        start_server: StartServer, turn_port: int) -> None:
    server = await start_server(ice_servers=f"stun:127.0.0.1:{turn_port},turn:127.0.0.1:{turn_port}?transport=udp",
                                turn_secret=SECRET)
    meeting_id, h, g, now = await _meeting_now(server)
    host_servers = (await h.ok("meeting:join", {"meetingId": meeting_id}))["iceServers"]
    guest_servers = (await g.expect("lobby:admitted"))["iceServers"]
    for servers, user in ((host_servers, "t1"), (guest_servers, "c1")):
        turn = _turn(servers)
        expiry, _, name = turn["username"].partition(":")
        assert name == user
        assert int(expiry) == int((now + timedelta(seconds=3600)).timestamp())
        digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()
    host = Peer(h, meeting_id, "c1", rtc_config(host_servers, relay_only=True))
    guest = Peer(g, meeting_id, "t1", rtc_config(guest_servers, relay_only=True))
    try:
        guest.follow()
        host.follow()
        await host.offer()
        await asyncio.gather(host.connected(), guest.connected())
        for peer in (host, guest):
            _sdp, candidates = split_sdp(peer.pc.localDescription.sdp)
            assert candidates and all(" typ relay" in c["candidate"] for c in candidates)
        await host.channel_open(10)
        host.channel.send("through the relay")
        assert await asyncio.wait_for(guest.messages.get(), 10) == "through the relay"
    finally:
        await host.close()
        await guest.close()


@pytest.mark.parametrize("problem", ["expired", "other_secret"])
async def test_relay_refuses_expired_or_foreign_credentials(start_server: StartServer, turn_port: int,
                                                            problem: str) -> None:
    server = await start_server(ice_servers=f"turn:127.0.0.1:{turn_port}?transport=udp", turn_secret=SECRET)
    meeting_id, h, g, _now = await _meeting_now(server)
    host_servers = (await h.ok("meeting:join", {"meetingId": meeting_id}))["iceServers"]
    guest_servers = (await g.expect("lobby:admitted"))["iceServers"]
    turn = _turn(host_servers)
    if problem == "expired":
        username = f"{int((now_for_tests() - timedelta(minutes=1)).timestamp())}:t1"
        turn.update(username=username, credential=turn_credential(SECRET, username))
    else:
        turn.update(credential=turn_credential("another-secret", turn["username"]))
    host = Peer(h, meeting_id, "c1", rtc_config(host_servers, relay_only=True))
    guest = Peer(g, meeting_id, "t1", rtc_config(guest_servers, relay_only=True))
    try:
        guest.follow()
        host.follow()
        await host.offer()
        _sdp, candidates = split_sdp(host.pc.localDescription.sdp)
        assert not any(" typ relay" in c["candidate"] for c in candidates)
        await asyncio.sleep(3)
        assert host.pc.connectionState != "connected" and guest.pc.connectionState != "connected"
    finally:
        await host.close()
        await guest.close()
