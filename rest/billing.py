"""`POST /webhooks/stripe`: the raw body's signature checked, the event kept, 200 at once (applied later)."""
from __future__ import annotations

import orjson
from aiohttp import web

from errors import Unavailable
from rest.app_keys import BILLING

MAX_EVENT_BYTES = 512 * 1024
_STORED, _DUPLICATE = (orjson.dumps({"received": True, "duplicate": duplicate}) for duplicate in (False, True))


async def stripe_webhook(request: web.Request) -> web.Response:
    """400 for a bad or missing signature (nothing stored), 503 without Stripe configured, else 200."""
    feature = request.app[BILLING]
    if not feature.enabled:
        raise Unavailable("Billing is not available on this server")
    body = await request.read()
    created = await feature.parts.webhooks.receive(body, request.headers.get("Stripe-Signature"))
    return web.Response(body=_STORED if created else _DUPLICATE, content_type="application/json")


def setup(app: web.Application) -> None:
    """Add the Stripe webhook route."""
    app.router.add_post("/webhooks/stripe", stripe_webhook)
