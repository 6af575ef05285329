"""Operations endpoints: /health, /ready, /metrics."""
from __future__ import annotations

from aiohttp import web

from handlers.metrics import render_jobs
from rest.app_keys import CONNECTIONS, METRICS, NOTIFICATIONS


async def health(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """MongoDB and Redis answer: 200, else 503 naming what failed."""
    results = await request.app[CONNECTIONS].readiness()
    healthy = all(value == "ok" for value in results.values())
    return web.json_response({"status": "ready" if healthy else "unavailable", "checks": results},
                             status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (the background queues' depths are at most a few seconds old)."""
    body = request.app[METRICS].render()
    if NOTIFICATIONS in request.app:
        body += render_jobs(await request.app[NOTIFICATIONS].jobs.statuses())
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def setup(app: web.Application) -> None:
    """Add the operations routes."""
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
