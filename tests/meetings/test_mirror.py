"""The admitted-seat mirror (Redis and memory): a late `admitted` never covers a revocation."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from stores.meetings.mirror import MemorySeatMirror, RedisSeatMirror, SeatMirror
from stores.redis import connect


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
