"""One Redis pub/sub channel, read and written lean: connections of their own, commands packed by hand, replies
parsed by hiredis.

redis-py's `PubSub.listen()` spends tens of µs of Python per message (a retry wrapper and a health check around
every read, a dict per message), and its pipeline packs and parses each command in Python; every process receives
every message of the Socket.IO channel, its own included, so at thousands of relayed events a second that was a
good share of a core. Here one read of the socket yields the payloads of every message it brought, parsed in C,
and a batch of PUBLISH commands is one write whose replies are counted off the same parser.
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence

import hiredis
from redis.asyncio.connection import parse_url

CONNECT_TIMEOUT = 5.0
READ_SIZE = 256 * 1024
SILENCE_SECONDS = 30.0  # a subscription quiet this long sends PING; no answer within as long again: reconnect


def lean_channel_supported(url: str) -> bool:
    """True for the URLs `ChannelPublisher` and `ChannelSubscription` connect to themselves: plain TCP (`redis://`)
    or a Unix socket."""
    return url.startswith(("redis://", "unix://"))


def _command(*parts: bytes) -> bytes:
    """A command in RESP."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class _Channel:
    """One channel of the Redis at `url` (`redis://` or `unix://`, with its user and password)."""

    def __init__(self, url: str, channel: str) -> None:
        self._options = parse_url(url)
        self._channel = channel.encode()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection, authenticated (the AUTH reply is the first to read)."""
        options = self._options
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if "path" in options:
                reader, writer = await asyncio.open_unix_connection(options["path"])
            else:
                reader, writer = await asyncio.open_connection(options.get("host", "localhost"),
                                                               int(options.get("port", 6379)))
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        password = options.get("password")
        if password:
            user = options.get("username")
            writer.write(_command(b"AUTH", *([user.encode()] if user else []), password.encode()))
        return reader, writer


class ChannelPublisher(_Channel):
    """PUBLISHes batches of messages to the channel on a connection of its own (one batch at a time)."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel)
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter, hiredis.Reader] | None = None

    async def _connected(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, hiredis.Reader]:
        if self._connection is None:
            reader, writer = await self._open()
            parser = hiredis.Reader()
            if self._options.get("password"):
                await _replies(reader, parser, 1)
            self._connection = (reader, writer, parser)
        return self._connection

    async def publish(self, messages: Sequence[str | bytes]) -> None:
        """PUBLISH each message, in order, in one write; returns once Redis answered them all. On any failure
        (or cancellation) the connection is dropped and the next batch opens a new one."""
        try:
            reader, writer, parser = await self._connected()
            head = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n" % (len(self._channel), self._channel)
            encoded = [message if isinstance(message, bytes) else message.encode() for message in messages]
            writer.write(b"".join(b"%s$%d\r\n%s\r\n" % (head, len(body), body) for body in encoded))
            await _replies(reader, parser, len(messages))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection."""
        if self._connection is not None:
            self._connection[1].close()
            self._connection = None


async def _replies(reader: asyncio.StreamReader, parser: hiredis.Reader, count: int) -> None:
    """Read `count` replies; ConnectionError on an error reply or the end of the connection."""
    while count:
        reply = parser.gets()
        if reply is False:
            data = await reader.read(READ_SIZE)
            if not data:
                raise ConnectionError("redis closed the connection")
            parser.feed(data)
            continue
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"redis refused: {reply}")
        count -= 1


class ChannelSubscription(_Channel):
    """Subscribes to the channel on a connection of its own.

    A connection that Redis stopped answering without closing it (a partition, a paused server) would otherwise
    wait on TCP keepalive for hours while other processes' messages go elsewhere: after `silence` seconds
    without a byte it sends PING (allowed while subscribed) and gives up when that is not answered in as long.
    """

    def __init__(self, url: str, channel: str, silence: float = SILENCE_SECONDS) -> None:
        super().__init__(url, channel)
        self._silence = silence

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        """The next bytes, pinging Redis once after a silence; ConnectionError when it stays silent."""
        try:
            async with asyncio.timeout(self._silence):
                return await reader.read(READ_SIZE)
        except TimeoutError:
            writer.write(_command(b"PING"))
        try:
            async with asyncio.timeout(self._silence):
                return await reader.read(READ_SIZE)
        except TimeoutError:
            raise ConnectionError("redis did not answer a ping on the subscription") from None

    async def batches(self) -> AsyncIterator[list[bytes]]:
        """Connect and subscribe, yield `[]` once subscribed, then the payloads of the messages each read brought,
        in order; raises ConnectionError when Redis refuses, stops answering or the connection ends."""
        reader, writer = await self._open()
        try:
            writer.write(_command(b"SUBSCRIBE", self._channel))
            await writer.drain()
            parser = hiredis.Reader()
            subscribed = False
            while True:
                data = await self._read(reader, writer)
                if not data:
                    raise ConnectionError("redis closed the subscription")
                parser.feed(data)
                payloads: list[bytes] = []
                reply = parser.gets()
                while reply is not False:
                    if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                        payloads.append(reply[2])
                    elif isinstance(reply, hiredis.ReplyError):
                        raise ConnectionError(f"redis refused the subscription: {reply}")
                    elif isinstance(reply, list) and reply[:1] == [b"subscribe"]:
                        subscribed = True
                    reply = parser.gets()
                if subscribed:
                    subscribed = False
                    yield []
                if payloads:
                    yield payloads
        finally:
            writer.close()
