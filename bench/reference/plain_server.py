"""Plain python-socketio reference server for the careline benchmark.

Library defaults: ``socketio.AsyncServer(async_mode="aiohttp")`` on aiohttp's default
asyncio loop (no uvloop, no custom JSON).  Same protocol as bench/reference/node/server.js:

* namespace ``/bench``, connect auth ``{token}`` (any non-empty string is accepted and
  stored in the session, like a real app would keep the authenticated identity)
* ``join`` (room) -> enters the room, acks ``True``
* ``publish`` (room, text) -> broadcasts ``msg`` (text) to everyone in the room

Env: PORT, HOST, REDIS_URL (optional: AsyncRedisManager), REDIS_PREFIX (Redis channel).
``GET /health`` answers 200.
"""
from __future__ import annotations

import os

import socketio
from aiohttp import web

NS = "/bench"

redis_url = os.environ.get("REDIS_URL")
manager = None
if redis_url:
    manager = socketio.AsyncRedisManager(redis_url, channel=os.environ.get("REDIS_PREFIX", "careline-bench"))
sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
app = web.Application()
sio.attach(app)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


app.router.add_get("/health", health)


@sio.on("connect", namespace=NS)
async def connect(sid, environ, auth):
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise socketio.exceptions.ConnectionRefusedError("unauthorized")
    await sio.save_session(sid, {"token": token}, namespace=NS)


@sio.on("join", namespace=NS)
async def join(sid, room):
    await sio.enter_room(sid, room, namespace=NS)
    return True


@sio.on("publish", namespace=NS)
async def publish(sid, room, text):
    await sio.emit("msg", text, room=room, namespace=NS)


if __name__ == "__main__":
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5200")), print=None)
