"""Building the Socket.IO server and registering careline's namespaces on it."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import socketio

from config import Config
from realtime.engine import CarelineServer, FastEmitManager, FastEmitRedisManager, JsonPacket
from realtime.engine.inflow import InflowLimits

ENGINE_MAX_BUFFER = 1_000_000  # transport limit; request payloads are held to MAX_PAYLOAD_BYTES per event


class OrjsonCodec:
    """The `json` module interface python-socketio expects, backed by orjson."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        """Serialise compactly."""
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def loads(text: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """Parse."""
        return orjson.loads(text)


def redis_manager(config: Config, write_only: bool = False) -> socketio.AsyncRedisManager:
    """The manager that carries emits and room operations between processes."""
    assert config.redis_url
    return FastEmitRedisManager(config.redis_url, channel=config.redis_prefix + "socketio", write_only=write_only,
                                json=OrjsonCodec)


def create_sio(config: Config) -> CarelineServer:
    """The one AsyncServer of this process."""
    manager = redis_manager(config) if config.redis_url else FastEmitManager()
    sio = CarelineServer(
        async_mode="aiohttp", client_manager=manager, cors_allowed_origins=config.allowed_origins,
        ping_interval=config.ping_interval, ping_timeout=config.ping_timeout,
        connect_timeout=config.connect_timeout,
        inflow=InflowLimits(per_second=config.connection_rate_per_second, burst=config.connection_rate_burst,
                            max_bytes=config.max_payload_bytes),
        max_http_buffer_size=ENGINE_MAX_BUFFER, serializer=JsonPacket, json=OrjsonCodec, logger=False,
        engineio_logger=False,
    )
    sio.eio.output_backlog_limit = config.socket_backlog_max_bytes
    return sio


async def shutdown(sio: socketio.AsyncServer) -> None:
    """Close every client connection (pending polls return at once), then stop background tasks."""
    sockets = list(sio.eio.sockets.values())
    if sockets:
        await asyncio.gather(*(sock.close(wait=False, abort=False) for sock in sockets),
                             return_exceptions=True)
    if sio.eio.service_task_handle is not None:
        await sio.shutdown()
    listener = getattr(sio.manager, "thread", None)
    if listener is not None and hasattr(listener, "cancel"):
        listener.cancel()
