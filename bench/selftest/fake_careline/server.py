"""A stand-in for careline's server.py that implements only the benchmark's binding contract
(env, /health, JWT auth on /chat, conversation:open / conversation:join / message:send ->
message:created).  It exists to check the bench's careline adapter end to end before careline's
chat feature lands:

    python -m bench --quick --targets careline --careline-root bench/selftest/fake_careline

It is NOT careline and its figures mean nothing for careline.
"""
from __future__ import annotations

import itertools
import os
import time
import uuid

import jwt
import socketio
from aiohttp import web

SECRET = os.environ["JWT_SECRET"]
manager = socketio.AsyncRedisManager(os.environ["REDIS_URL"], channel="fake-careline") if os.environ.get("REDIS_URL") else None
sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
app = web.Application()
sio.attach(app)
app.router.add_get("/health", lambda request: web.Response(text="ok"))
conversations: dict[str, dict] = {}
seq = itertools.count(1)
NS = "/chat"


@sio.on("connect", namespace=NS)
async def connect(sid, environ, auth):
    try:
        claims = jwt.decode((auth or {}).get("token", ""), SECRET, algorithms=["HS256"])
    except jwt.PyJWTError as e:
        raise socketio.exceptions.ConnectionRefusedError(f"unauthorized: {e}") from None
    await sio.save_session(sid, {"user": claims}, namespace=NS)


@sio.on("conversation:open", namespace=NS)
async def conv_open(sid, data):
    user = (await sio.get_session(sid, namespace=NS))["user"]
    if user["role"] != "therapist":
        return {"ok": False, "error": {"code": "forbidden"}}
    cid = uuid.uuid4().hex
    conversations[cid] = {"id": cid, "title": data.get("title"), "memberIds": [user["sub"], *data["memberIds"]]}
    return {"ok": True, "data": conversations[cid]}


@sio.on("conversation:join", namespace=NS)
async def conv_join(sid, data):
    # (with two processes the conversation may live on the other one: accept unknown ids)
    await sio.enter_room(sid, f"conv:{data['conversationId']}", namespace=NS)
    return {"ok": True, "data": {"conversationId": data["conversationId"]}}


@sio.on("message:send", namespace=NS)
async def msg_send(sid, data):
    user = (await sio.get_session(sid, namespace=NS))["user"]
    msg = {"id": uuid.uuid4().hex, "conversationId": data["conversationId"], "seq": next(seq), "senderId": user["sub"],
           "text": data["text"], "requestId": data.get("requestId"), "createdAt": time.time()}
    await sio.emit("message:created", msg, room=f"conv:{data['conversationId']}", namespace=NS)
    return {"ok": True, "data": msg}


if __name__ == "__main__":
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ["PORT"]), print=None)
