"""Protocol test-suite server: careline's Socket.IO server plus the suites' echo handlers.

Run ``python tests/conformance/server.py`` (on the embedded default, or MONGODB_URI) and
point the official Engine.IO and Socket.IO test suites (mocha, localhost:3000) at it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from config import Config
from realtime.engine import CarelineEngine, CarelineServer
from realtime.server import ENGINE_MAX_BUFFER
from server import (
    SIO,
    create_app,
)

SIO_KEY = web.AppKey("careline_sio", CarelineServer)
ECHO_KEY = web.AppKey("careline_engine_echo", CarelineEngine)

#: the suites' reference timing (seconds / bytes)
SUITE_SETTINGS: dict[str, Any] = {
    "ping_interval": 0.3,
    "ping_timeout": 0.2,
    "max_http_buffer_size": 1_000_000,
    "connect_timeout": 1.0,
}


_SETTING_ENV = {"ping_interval": "PING_INTERVAL_SECONDS", "ping_timeout": "PING_TIMEOUT_SECONDS",
                "connect_timeout": "CONNECT_TIMEOUT_SECONDS"}


def build_production_server(settings: dict[str, Any], env: dict[str, str]) -> tuple[CarelineServer, web.Application]:
    """Build the sio server and aiohttp app exactly as production does: `create_app(Config.from_env(...))`."""
    if settings.get("max_http_buffer_size", ENGINE_MAX_BUFFER) != ENGINE_MAX_BUFFER:
        raise ValueError("careline's engine buffer is fixed at ENGINE_MAX_BUFFER")
    env = dict(env, **{_SETTING_ENV[k]: str(v) for k, v in settings.items() if k in _SETTING_ENV})
    app = create_app(Config.from_env(env))
    return app[SIO], app  # type: ignore[return-value]


def add_suite_namespaces(sio: CarelineServer) -> None:
    """Register the suites' `/` and `/custom` namespaces (echo, ack and auth handlers)."""

    async def connect(sid: str, environ: dict, auth: Any = None) -> None:
        await sio.emit("auth", auth or {}, to=sid, namespace="/")

    async def connect_custom(sid: str, environ: dict, auth: Any = None) -> None:
        await sio.emit("auth", auth or {}, to=sid, namespace="/custom")

    async def message(sid: str, *args: Any) -> None:
        await sio.emit("message-back", args, to=sid)

    async def message_with_ack(sid: str, *args: Any) -> tuple:
        return args

    sio.on("connect", connect, namespace="/")
    sio.on("connect", connect_custom, namespace="/custom")
    sio.on("message", message, namespace="/")
    sio.on("message-with-ack", message_with_ack, namespace="/")


def add_engine_echo(sio: CarelineServer, app: web.Application) -> None:
    """Serve a bare Engine.IO echo endpoint at /engine.io/ with careline's engine settings."""
    eio = sio.engine_sibling()

    async def echo(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    eio.on("message", echo)
    eio.attach(app, "engine.io")
    app[ECHO_KEY] = eio


def build_suite_app(sio: CarelineServer, app: web.Application) -> web.Application:
    """Add the suites' handlers to a production-built sio/app pair."""
    add_suite_namespaces(sio)
    add_engine_echo(sio, app)
    app[SIO_KEY] = sio
    return app


def make_app(settings: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> web.Application:
    """Return the complete suite app (production server + suite handlers)."""
    sio, app = build_production_server(dict(SUITE_SETTINGS, **(settings or {})),
                                       dict(os.environ) if env is None else env)
    return build_suite_app(sio, app)


def main() -> None:
    """Run the suite server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
