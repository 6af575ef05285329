"""Every delivery path crosses processes: two `python server.py` processes sharing Redis and the database."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from handlers.auth import mint_token
from handlers.serialize import iso
from tests.booking.helpers import availability
from tests.clients import SioClient
from tests.conftest import ServerProcess


async def _client(process: ServerProcess, sub: str, role: str, namespace: str) -> SioClient:
    from config import Config

    config = Config.from_env(process.env)
    client = SioClient(process.url, namespace)
    await client.connect(auth={"token": mint_token(config, sub, role, sub.title())})
    return client


async def test_every_delivery_path_crosses_processes(spawn_server) -> None:  # type: ignore[no-untyped-def]
    first, second = await spawn_server(redis=True), await spawn_server(redis=True)
    clients: list[SioClient] = []
    try:
        # Room broadcast: a conversation message sent on one process reaches a member on the other.
        alice = await _client(first, "alice", "client", "/chat")
        bob = await _client(second, "bob", "therapist", "/chat")
        clients += [alice, bob]
        conversation = await alice.ok("conversation:open", {"memberIds": ["bob"]})
        for member in (alice, bob):
            await member.ok("conversation:join", {"conversationId": conversation["id"]})
        started = time.monotonic()
        sent = await alice.ok("message:send", {"conversationId": conversation["id"], "text": "hi",
                                               "requestId": "x1"})
        assert (await bob.expect("message:created"))["id"] == sent["id"]
        assert time.monotonic() - started < 1.0

        # Presence: Bob sees Alice's second-process tab close (she is offline once no socket is left).
        await alice.disconnect()
        offline = await bob.expect("presence:changed", lambda e: e["userId"] == "alice")
        assert offline["status"] == "offline"

        # Per-user emit: a notification for Carol created on one process reaches her sockets on both.
        carol_here = await _client(first, "carol", "admin", "/notifications")
        carol_there = await _client(second, "carol", "admin", "/notifications")
        clients += [carol_here, carol_there]
        await carol_here.ok("notification:broadcast", {"role": "admin", "title": "Maintenance", "body": "Tonight",
                                                       "category": "system"})
        for inbox in (carol_here, carol_there):
            assert (await inbox.expect("notification:created"))["title"] == "Maintenance"

        # Availability updates: a therapist's change on one process reaches a subscriber on the other.
        therapist = await _client(first, "t1", "therapist", "/booking")
        watcher = await _client(second, "dave", "client", "/booking")
        clients += [therapist, watcher]
        await watcher.ok("availability:subscribe", {"therapistId": "t1"})
        await therapist.ok("availability:set", availability())
        update = await watcher.expect("availability:updated", lambda e: e["therapistId"] == "t1")
        assert update["from"] <= iso(datetime.now(timezone.utc) + timedelta(days=1))
    finally:
        for client in clients:
            if client.connected:
                await client.disconnect()
