"""Headless Chromium (the official socket.io-client + RTCPeerConnection) as the therapist, an aiortc client."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest

from rest.app_keys import MONGO_DB
from tests.clients import JS_DIR, StaticPages
from tests.conftest import StartServer
from tests.meetings.helpers import NS, START, booked_meeting, until
from tests.meetings.peers import Peer, rtc_config

pytestmark = [pytest.mark.slow, pytest.mark.js]
PAGE = Path(__file__).parent / "browser" / "therapist.html"


async def test_chromium_therapist_connects_to_an_aiortc_client_through_careline(
        start_server: StartServer, static_pages: StaticPages, turn_port: int) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is required: scripts/test installs it (apt-get install chromium)")
    page_server = await static_pages.serve(PAGE)
    server = await start_server(ice_servers=f"stun:127.0.0.1:{turn_port}")
    session = await booked_meeting(server)
    session.move(START)
    query = urlencode({"server": server.url, "token": server.token("t1", "therapist"),
                       "meeting": session.meeting_id, "guest": "c1"})
    browser = await asyncio.create_subprocess_exec(
        "node", str(JS_DIR / "browser.mjs"), f"{page_server}/?{query}", "40000", cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "CHROMIUM": chromium})
    guest: Peer | None = None
    try:
        seats = server.app[MONGO_DB]["meeting_seats"]

        async def host_in() -> bool:
            return await seats.count_documents({"userId": "t1", "state": "admitted"}) == 1

        await until(host_in, 30)
        g = await server.client("c1", "client", NS)
        assert (await g.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "waiting"
        admitted = await g.expect("lobby:admitted", timeout=10)
        guest = Peer(g, session.meeting_id, "t1", rtc_config(admitted["iceServers"]))
        guest.follow()
        await guest.connected(30)
        assert await asyncio.wait_for(guest.messages.get(), 20) == "ping from the browser"
        guest.channel.send("pong from aiortc")
        kinds = {(await asyncio.wait_for(guest.tracks.get(), 10)).kind for _ in range(2)}
        assert kinds == {"audio", "video"}
        out, _ = await asyncio.wait_for(browser.communicate(), 60)
        state = json.loads(out)
        assert state["joined"] == "admitted" and state["errors"] == []
        assert state["connectionState"] == "connected" and state["received"] == ["pong from aiortc"]
    finally:
        if browser.returncode is None:
            browser.kill()
            await browser.wait()
        if guest is not None:
            await guest.close()
