"""Web Push REST: the VAPID application server key browsers subscribe with."""
from __future__ import annotations

from aiohttp import web

from errors import Unavailable
from rest.app_keys import NOTIFICATIONS


async def vapid_public_key(request: web.Request) -> web.Response:
    """`{publicKey}`: the uncompressed P-256 point, base64url (for `pushManager.subscribe`)."""
    key = request.app[NOTIFICATIONS].push.public_key
    if key is None:
        raise Unavailable("Web Push is not configured")
    return web.json_response({"publicKey": key})


def setup(app: web.Application) -> None:
    """Add the Web Push routes."""
    app.router.add_get("/api/push/vapid-public-key", vapid_public_key)
