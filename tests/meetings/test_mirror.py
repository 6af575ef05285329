"""The admitted-seat mirror (Redis and memory): a late `admitted` never covers a revocation."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from stores.meetings.mirror import MemorySeatMirror, RedisSeatMirror, SeatMirror
from stores.meetings.revocations import RedisRevocations
from stores.redis import connect
from tests.meetings.helpers import until


@pytest.fixture(params=["redis", "memory"])
async def mirror(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[SeatMirror]:
    """Each implementation against its real backing."""
    if request.param == "memory":
        yield MemorySeatMirror()
        return
    client = connect(redis_url)
    yield RedisSeatMirror(client, f"t:{uuid.uuid4().hex[:8]}:")
    await client.aclose()


async def test_versions_decide_and_revocations_win_ties(mirror: SeatMirror) -> None:
    assert not await mirror.both_admitted("m1", "a", "b")  # unknown: ask the database
    await mirror.admitted("m1", 0, "a")
    await mirror.admitted("m1", 1, "b")
    assert await mirror.both_admitted("m1", "a", "b")
    await mirror.revoke("m1", 2, "b")  # a kick, recorded before the database write
    await mirror.admitted("m1", 1, "b")  # the admission's late mirror write
    await mirror.admitted("m1", 2, "b")  # a refresh racing the kick at the same version
    assert not await mirror.both_admitted("m1", "a", "b")
    await mirror.admitted("m1", 3, "b")  # admitted again through the lobby
    assert await mirror.both_admitted("m1", "a", "b")
    assert not await mirror.both_admitted("m2", "a", "b")


async def test_a_burst_of_signal_checks_shares_pipelined_reads(mirror: SeatMirror) -> None:
    """300 checks at once (beyond redis-py's 100 pool connections) all answer: a burst is not taken for an outage."""
    for n in range(150):
        await mirror.admitted(f"m{n}", 0, "a")
        await mirror.admitted(f"m{n}", 0, "b")
    answers = await asyncio.gather(*(mirror.both_admitted(f"m{n % 150}", "a", "b") for n in range(300)))
    assert all(answers)
    assert not any(await asyncio.gather(*(mirror.both_admitted(f"m{n}", "a", "c") for n in range(150))))


async def test_a_revocation_is_answered_by_every_listening_process(redis_url: str) -> None:
    """Three processes listen: the others drop the seat and answer; a listener that never answers (a process
    that cannot be heard from) keeps the announcement unanswered, so its revoker waits out the hold."""
    client, prefix = connect(redis_url), f"t:{uuid.uuid4().hex[:8]}:"
    dropped: dict[str, list[tuple[str, str]]] = {"a": [], "b": [], "c": []}
    channels = {name: RedisRevocations(client, prefix) for name in dropped}
    for name, channel in channels.items():
        channel.start(lambda meeting, user, name=name: dropped[name].append((meeting, user)))
    silent = client.pubsub()
    try:
        await until(lambda: all(channel.epoch is not None for channel in channels.values()))
        answered = await channels["a"].announce("m1", "u1")
        assert answered is not None
        await asyncio.wait_for(answered, 5)
        assert dropped == {"a": [], "b": [("m1", "u1")], "c": [("m1", "u1")]}
        await silent.subscribe(f"{prefix}meetings:revoked")
        unanswered = await channels["a"].announce("m1", "u2")
        assert unanswered is not None
        await until(lambda: dropped["b"][-1:] == dropped["c"][-1:] == [("m1", "u2")])
        await asyncio.sleep(0.3)
        assert not unanswered.done()
    finally:
        await silent.aclose()
        for channel in channels.values():
            await channel.close()
        await client.aclose()
