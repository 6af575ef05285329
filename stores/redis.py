"""Redis client lifecycle (`Redis` is the client type the other layers name)."""
from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["Redis", "connect", "ping"]


def connect(url: str) -> Redis:
    """Create the process-wide Redis client (decoded strings, bounded timeouts)."""
    return Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                          health_check_interval=30)


async def ping(client: Redis) -> None:
    """Raise unless Redis answers."""
    await client.ping()
