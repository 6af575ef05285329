"""The REST routes of the notifications feature: Web Push's key and email unsubscribe links."""
from __future__ import annotations

from aiohttp import web

from rest import email, push


def setup(app: web.Application) -> None:
    """Add every notifications route."""
    push.setup(app)
    email.setup(app)
