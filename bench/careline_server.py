"""careline's transport under the benchmark's reference protocol (the `careline-transport` target).

The app is built exactly as in production (`create_app(Config.from_env())`: auth, envelope,
rate limits, manager, engine); one extra namespace `/bench` speaks the reference protocol
through careline's own request path:

* connect auth `{token}` (a careline JWT)
* `join {room}` -> the publisher's `join(...)`, acks `{ok: true, data: {}}`
* `publish {room, text}` -> the publisher's `to_room(..., "msg", text)`

Run from the repo root: `python bench/careline_server.py` (same env as `python server.py`).
"""
from __future__ import annotations

import asyncio
import collections
import gc
import os
import signal
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from marshmallow import Schema

import server
from config import Config
from handlers.auth import User
from realtime.base import BaseNamespace, request
from realtime.publisher import SocketPublisher
from realtime.schemas.common import RequestSchema, fields, validate
from realtime.wire import WireFormat
from rest.app_keys import METRICS, SHARED
from server import SIO

NAMESPACE = "/bench"


class JoinRoom(RequestSchema):
    """`join {room}`."""

    room = fields.String(required=True, validate=validate.Length(1, 128))


class Publish(RequestSchema):
    """`publish {room, text}`."""

    room = fields.String(required=True, validate=validate.Length(1, 128))
    text = fields.String(required=True, validate=validate.Length(max=4096))


class RawText(Schema):
    """The reference protocol's `msg` payload is the text itself."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """The text, unchanged."""
        return obj


class BenchNamespace(BaseNamespace[SocketPublisher]):
    """The reference protocol on careline's request path (validation, rate limit, envelope).

    Its handler is a publisher like the app's (same server, same socket registry) whose wire format
    knows `msg`.
    """

    path = NAMESPACE
    emits = {"msg": RawText}

    @request("join", JoinRoom)
    async def join(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Enter a room through the publisher (socket registry included)."""
        await self.handler.join(self.namespace, sid, payload["room"], user.id)
        return {}

    @request("publish", Publish)
    async def publish(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Broadcast `msg(text)` to the room through the publisher."""
        await self.handler.to_room(self.namespace, payload["room"], "msg", payload["text"])
        return {}


async def _bench_ctx(app: web.Application) -> AsyncIterator[None]:
    shared = app[SHARED]
    publisher = SocketPublisher(app[SIO], shared.sockets, WireFormat([BenchNamespace]))
    app[SIO].register_namespace(BenchNamespace(publisher, shared, app[METRICS]))
    dump_to = os.environ.get("BENCH_MEMORY_DUMP")
    task = asyncio.create_task(_dump_memory(dump_to)) if dump_to else None
    snapshots = os.environ.get("BENCH_MEMORY_SNAPSHOTS")
    if snapshots:
        _snapshot_on_signal(Path(snapshots))
    yield
    if task is not None:
        task.cancel()


def _snapshot_on_signal(prefix: Path) -> None:
    """Profiling aid: trace allocations from now on; each SIGUSR1 writes a tracemalloc snapshot to
    `<prefix>.<n>` after a full collection (the runner sends one at each of the scenario's checkpoints)."""
    tracemalloc.start(8)
    taken = iter(range(1_000))

    def take() -> None:
        gc.collect()
        tracemalloc.take_snapshot().dump(f"{prefix}.{next(taken)}")

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, take)


async def _dump_memory(path: str) -> None:
    """Profiling aid: every 10 s, append the top allocation sites and object counts to `path`."""
    tracemalloc.start(3)
    while True:
        await asyncio.sleep(10)
        stats = tracemalloc.take_snapshot().statistics("traceback")[:25]
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects()).most_common(25)
        with open(path, "a") as out:
            out.write(f"=== {time.strftime('%X')} traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB\n")
            for stat in stats:
                out.write(f"{stat.size / 1024:10.0f} KB {stat.count:8d}  {stat.traceback.format()[-2:]}\n")
            out.write("".join(f"{n:10d} {name}\n" for name, n in counts))


def main() -> int:
    """Run careline with the `/bench` namespace (same entry point as `python server.py`)."""
    original = server.create_app

    def create_app(config: Config) -> web.Application:
        app = original(config)
        app.cleanup_ctx.append(_bench_ctx)
        return app

    server.create_app = create_app  # type: ignore[assignment]
    return server.main([])


if __name__ == "__main__":
    sys.exit(main())
