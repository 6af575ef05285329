"""The socket registry: who has a live socket in which group, across processes, surviving crashes."""
from __future__ import annotations

import asyncio
import time

from handlers.publisher import room_group
from stores import redis as redis_store
from stores.sockets import PROCESS_TTL_SECONDS, RedisSocketRegistry
from tests.conftest import StartServer


async def test_user_sockets_are_visible_from_another_process(start_server: StartServer) -> None:
    first, second = await start_server(redis=True), await start_server(redis=True)
    group = room_group("/notifications", "user:u1")
    client = await first.client("u1", namespace="/notifications")
    assert await second.shared.sockets.any_live([group]) == {group: True}
    assert await second.shared.sockets.users(group) == {"u1"}
    await client.disconnect()
    await asyncio.sleep(0.1)
    assert await second.shared.sockets.any_live([group]) == {group: False}


async def test_in_memory_registry_tracks_connects(server) -> None:  # type: ignore[no-untyped-def]
    group = room_group("/chat", "user:u1")
    one = await server.client("u1")
    two = await server.client("u1")
    assert await server.shared.sockets.users(group) == {"u1"}
    await one.disconnect()
    await asyncio.sleep(0.05)
    assert await server.shared.sockets.any_live([group]) == {group: True}
    await two.disconnect()
    await asyncio.sleep(0.05)
    assert await server.shared.sockets.any_live([group]) == {group: False}


async def test_sockets_of_a_dead_process_stop_counting(redis_url: str, test_env: dict[str, str]) -> None:
    redis = redis_store.connect(redis_url)
    prefix = test_env["REDIS_PREFIX"]
    crashed, survivor = RedisSocketRegistry(redis, prefix), RedisSocketRegistry(redis, prefix)
    await crashed.heartbeat()
    assert await crashed.add("/chat|user:u9", "sid-1", "u9") == 1
    assert await survivor.users("/chat|user:u9") == {"u9"}
    # The crashed process stops beating: make its last heartbeat older than the TTL.
    await redis.zadd(prefix + "procs", {crashed.process_id: time.time() - PROCESS_TTL_SECONDS - 1})
    await survivor.heartbeat()
    assert await survivor.users("/chat|user:u9") == set()
    assert await redis.hlen(prefix + "sockets:/chat|user:u9") == 0
    await redis.aclose()
