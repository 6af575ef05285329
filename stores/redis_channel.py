"""One Redis pub/sub channel read lean: a connection of its own, SUBSCRIBE, and hiredis's parser on the raw bytes.

redis-py's `PubSub.listen()` spends tens of µs of Python per message (a retry wrapper and a health check around
every read, a dict per message); every process receives every message of the Socket.IO channel, its own included,
so at thousands of relayed events a second that was a good share of a core. Here one read of the socket yields
the payloads of every message it brought, parsed in C.
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import hiredis
from redis.asyncio.connection import parse_url

CONNECT_TIMEOUT = 5.0
READ_SIZE = 256 * 1024


def lean_subscription_supported(url: str) -> bool:
    """True for the URLs `ChannelSubscription` connects to itself: plain TCP (`redis://`) or a Unix socket."""
    return url.startswith(("redis://", "unix://"))


def _command(*parts: bytes) -> bytes:
    """A command in RESP."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class ChannelSubscription:
    """Subscribes to one channel of the Redis at `url` (`redis://` or `unix://`, with its user and password)."""

    def __init__(self, url: str, channel: str) -> None:
        self._options = parse_url(url)
        self._channel = channel.encode()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        options = self._options
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if "path" in options:
                return await asyncio.open_unix_connection(options["path"])
            reader, writer = await asyncio.open_connection(options.get("host", "localhost"),
                                                           int(options.get("port", 6379)))
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return reader, writer

    async def batches(self) -> AsyncIterator[list[bytes]]:
        """Connect and subscribe, yield `[]` once subscribed, then the payloads of the messages each read brought,
        in order; raises ConnectionError when Redis refuses or the connection ends."""
        reader, writer = await self._open()
        try:
            password = self._options.get("password")
            if password:
                user = self._options.get("username")
                writer.write(_command(b"AUTH", *([user.encode()] if user else []), password.encode()))
            writer.write(_command(b"SUBSCRIBE", self._channel))
            await writer.drain()
            parser = hiredis.Reader()
            subscribed = False
            while True:
                data = await reader.read(READ_SIZE)
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
