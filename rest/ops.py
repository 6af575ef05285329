"""Operations endpoints: /health, /ready, /metrics."""
from __future__ import annotations

import asyncio

from aiohttp import web

from rest.app_keys import EMBEDDED_MONGO, METRICS, MONGO_CLIENT, REDIS
from stores import mongo as mongo_store
from stores import redis as redis_store

READY_TIMEOUT = 2.0


async def health(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: object) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT)  # type: ignore[arg-type]
        return name, "ok"
    except Exception as exc:
        return name, f"unreachable ({type(exc).__name__})"


async def ready(request: web.Request) -> web.Response:
    """MongoDB and Redis answer: 200, else 503 naming what failed."""
    app = request.app
    checks = [_check("mongodb", mongo_store.ping(app[MONGO_CLIENT]))]  # type: ignore[arg-type]
    if app[REDIS] is not None:
        checks.append(_check("redis", redis_store.ping(app[REDIS])))  # type: ignore[arg-type]
    results = dict(await asyncio.gather(*checks))
    embedded = app[EMBEDDED_MONGO]
    if embedded is not None and not embedded.running:  # type: ignore[attr-defined]
        results["mongodb"] = "unreachable (embedded database stopped)"
    healthy = all(value == "ok" for value in results.values())
    return web.json_response({"status": "ready" if healthy else "unavailable", "checks": results},
                             status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS].render()  # type: ignore[attr-defined]
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def setup(app: web.Application) -> None:
    """Add the operations routes."""
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
