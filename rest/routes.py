"""Every REST route of careline."""
from __future__ import annotations

from aiohttp import web

from rest import ops, push, uploads


def setup_routes(app: web.Application) -> None:
    """Add all REST routes (features add theirs here)."""
    ops.setup(app)
    uploads.setup(app)
    push.setup(app)
