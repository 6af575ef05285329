"""Every delivery path crosses processes: two `python server.py` processes sharing Redis and the database."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

from clock import iso
from handlers.auth import mint_token
from tests.booking.helpers import availability
from tests.chat.helpers import rid
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


async def test_chat_sends_from_two_processes_share_one_seq_counter_and_blocks(spawn_server) -> None:  # type: ignore[no-untyped-def]
    first, second = await spawn_server(redis=True), await spawn_server(redis=True)
    alice = await _client(first, "alice", "client", "/chat")
    bob = await _client(second, "bob", "therapist", "/chat")
    try:
        conversation = await alice.ok("conversation:open", {"memberIds": ["bob"]})
        cid = conversation["id"]
        sends = [member.ok("message:send", {"conversationId": cid, "text": f"{name} {i}", "requestId": f"{name}{i}"})
                 for i in range(12) for member, name in ((alice, "a"), (bob, "b"))]
        sent = await asyncio.gather(*sends)
        assert sorted(m["seq"] for m in sent) == list(range(1, 25))  # one counter (Redis), no gap, no repeat
        history = await bob.ok("message:history", {"conversationId": cid, "afterSeq": 0})
        assert [m["seq"] for m in history["items"]] == list(range(1, 25))
        # Activity is written behind: the other process's list catches up within the flush interval.
        deadline = time.monotonic() + 5
        while (listed := await alice.ok("conversation:list", {}))["items"][0]["lastSeq"] < 24:
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.2)
        # A block on one process stops sends on the other within the block cache's recheck (1 s).
        await alice.ok("user:block", {"userId": "bob"})
        deadline = time.monotonic() + 5
        while (ack := await bob.call("message:send", {"conversationId": cid, "text": "hi", "requestId": rid()}))["ok"]:
            assert time.monotonic() < deadline, "the block never reached the other process"
            await asyncio.sleep(0.2)
        assert ack["error"]["code"] == "forbidden"
    finally:
        for client in (alice, bob):
            if client.connected:
                await client.disconnect()


async def test_a_write_only_manager_reaches_a_web_process(start_server) -> None:  # type: ignore[no-untyped-def]
    """The worker's path: ManagerPublisher on a write-only manager (careline's emit and lean PUBLISH) delivers
    to a socket of a web process, once, in the declared wire shape."""
    from handlers.meetings.deltas import Muted
    from realtime.publisher import ManagerPublisher
    from realtime.server import redis_manager
    from server import wire_format

    web = await start_server(redis=True)
    client = await web.client("c9", "client", "/meetings")
    manager = redis_manager(web.config, write_only=True)
    publisher = ManagerPublisher(manager, wire_format())
    for n in range(3):
        await publisher.to_user("/meetings", "c9", "participant:muted", Muted(f"m{n}", "c9", "audio"))
    for n in range(3):
        assert await client.expect("participant:muted") == {"meetingId": f"m{n}", "userId": "c9", "kind": "audio"}
    await client.absent("participant:muted", within=0.2)
