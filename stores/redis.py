"""Redis client lifecycle (`Redis` is the client type the other layers name)."""
from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["Redis", "connect", "ping"]


def connect(url: str, timeout_ms: int = 2000) -> Redis:
    """Create the process-wide Redis client (decoded strings; every command and connect bounded by `timeout_ms`)."""
    seconds = timeout_ms / 1000
    return Redis.from_url(url, decode_responses=True, socket_timeout=seconds, socket_connect_timeout=seconds,
                          health_check_interval=30)


async def ping(client: Redis) -> None:
    """Raise unless Redis answers."""
    await client.ping()
