"""careline's lean Redis channel connections (stores/redis_channel.py, under the Socket.IO manager) against a real
redis-server that requires a password: batches arrive in order and whole, a wrong password is refused, a
publisher whose connection died fails that batch and reconnects for the next, a subscription whose Redis stops
answering (paused) gives up instead of waiting forever while a quiet one that answers its ping stays, and the
background listener (stores/redis_listener.py) reads through them and subscribes again after an outage."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from stores import redis_listener
from stores.redis_channel import ChannelPublisher, ChannelSubscription
from stores.redis_listener import ChannelListener
from tests.faults.test_redis import RedisProcess

PASSWORD = "s3cret-channel"


@pytest.fixture
def locked_redis() -> Iterator[RedisProcess]:
    redis = RedisProcess("--requirepass", PASSWORD)
    redis.start()
    yield redis
    redis.kill()


def _url(redis: RedisProcess, password: str = PASSWORD) -> str:
    return f"redis://:{password}@127.0.0.1:{redis.port}/0"


async def _received(subscription: ChannelSubscription, count: int, subscribed: asyncio.Event) -> list[bytes]:
    got: list[bytes] = []
    async for payloads in subscription.batches():
        subscribed.set()
        got.extend(payloads)
        if len(got) >= count:
            return got
    raise AssertionError("the subscription ended")


async def test_batches_arrive_in_order_and_whole(locked_redis: RedisProcess) -> None:
    publisher = ChannelPublisher(_url(locked_redis), "careline:test")
    subscribed = asyncio.Event()
    messages = [f"m{n}:" + "x" * (n * 97 % 70_000) for n in range(300)]  # up to ~70 KB: replies span reads
    listening = asyncio.create_task(_received(ChannelSubscription(_url(locked_redis), "careline:test"),
                                              len(messages), subscribed))
    await asyncio.wait_for(subscribed.wait(), 5)
    for start in range(0, len(messages), 64):
        await publisher.publish(messages[start:start + 64])
    assert await asyncio.wait_for(listening, 10) == [message.encode() for message in messages]
    publisher.close()


async def test_a_wrong_password_is_refused(locked_redis: RedisProcess) -> None:
    with pytest.raises(ConnectionError):
        await ChannelPublisher(_url(locked_redis, "wrong"), "careline:test").publish(["x"])
    with pytest.raises(ConnectionError):
        async for _ in ChannelSubscription(_url(locked_redis, "wrong"), "careline:test").batches():
            pass


async def test_a_publisher_fails_the_batch_of_a_dead_connection_and_reconnects(locked_redis: RedisProcess) -> None:
    publisher = ChannelPublisher(_url(locked_redis), "careline:test")
    await publisher.publish(["before"])
    locked_redis.kill()
    with pytest.raises(OSError):  # ConnectionError (closed), or refused while reconnecting
        await publisher.publish(["during"])
    locked_redis.start()
    subscribed = asyncio.Event()
    listening = asyncio.create_task(_received(ChannelSubscription(_url(locked_redis), "careline:test"), 1,
                                              subscribed))
    await asyncio.wait_for(subscribed.wait(), 5)
    await publisher.publish(["after"])
    assert await asyncio.wait_for(listening, 5) == [b"after"]
    publisher.close()


async def test_a_subscription_gives_up_on_a_silent_redis_and_stays_on_a_quiet_one(locked_redis: RedisProcess) -> None:
    subscription = ChannelSubscription(_url(locked_redis), "careline:test", silence=0.3)
    batches = subscription.batches()
    assert await asyncio.wait_for(anext(batches), 5) == []  # subscribed
    quiet = asyncio.create_task(anext(batches))
    await asyncio.sleep(1.0)  # three silences: each ping answered, nothing to yield
    assert not quiet.done()
    assert locked_redis.process is not None
    os.kill(locked_redis.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ConnectionError, match="did not answer a ping"):
            await asyncio.wait_for(quiet, 5)
    finally:
        os.kill(locked_redis.process.pid, signal.SIGCONT)


async def test_a_listener_on_the_lean_channel_hands_on_every_message_and_resubscribes(
        locked_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """ChannelListener given a `redis://` URL reads through ChannelSubscription (not redis-py's PubSub): each
    message's data in order, up and down reported, subscribed again once Redis is back."""
    monkeypatch.setattr(redis_listener, "RETRY_SECONDS", 0.1)
    url = _url(locked_redis)
    got: list[bytes] = []
    states: list[bool] = []
    up, down, arrived = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle(data: bytes) -> None:
        got.append(data)
        arrived.set()

    def changed(subscribed: bool) -> None:
        states.append(subscribed)
        (up if subscribed else down).set()
        (down if subscribed else up).clear()

    listener = ChannelListener(None, "careline:test", "test", logging.getLogger("test"), url)  # type: ignore[arg-type]
    publisher = ChannelPublisher(url, "careline:test")
    listener.start(handle, changed)
    try:
        await asyncio.wait_for(up.wait(), 5)
        await publisher.publish([f"m{n}" for n in range(200)])
        await _until(lambda: len(got) == 200, arrived)
        assert got == [f"m{n}".encode() for n in range(200)]
        locked_redis.kill()
        await asyncio.wait_for(down.wait(), 5)
        locked_redis.start()
        await asyncio.wait_for(up.wait(), 10)
        publisher.close()
        await publisher.publish(["again"])
        await _until(lambda: got[-1:] == [b"again"], arrived)
        assert states[:3] == [True, False, True]
    finally:
        publisher.close()
        await listener.close()


async def _until(condition: Callable[[], bool], changed: asyncio.Event, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            changed.clear()
            await changed.wait()
