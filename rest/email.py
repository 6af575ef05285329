"""`GET /api/email/confirm?u=&e=&exp=&sig=` (a new address, confirmed) and
`GET|POST /api/email/unsubscribe?u=&c=&sig=`: a signed link from a notification email (no login) that
switches off email about one category. POST is RFC 8058 one-click (`List-Unsubscribe-Post`)."""
from __future__ import annotations

from aiohttp import web

from errors import NotFound
from handlers.notifications.categories import CATEGORIES
from rest.app_keys import NOTIFICATIONS


async def unsubscribe(request: web.Request) -> web.Response:
    """Check the link's signature, then set the category's `email` switch to false."""
    feature = request.app[NOTIFICATIONS]
    user_id, category, signature = (request.query.get(key, "") for key in ("u", "c", "sig"))
    if feature.email is None or category not in CATEGORIES:
        raise NotFound("No such link")
    feature.email.unsubscribed(user_id, category, signature)
    await feature.preferences.change(user_id, categories={category: {"email": False}})
    return web.Response(text=f"You will no longer get email about {category} from careline.\n",
                        content_type="text/plain")


async def confirm(request: web.Request) -> web.Response:
    """The link of a `profile:set-email` confirmation: the address becomes the user's (404 if not genuine)."""
    feature = request.app[NOTIFICATIONS]
    if feature.email is None:
        raise NotFound("No such link")
    query = request.query
    await feature.email.confirm(query.get("u", ""), query.get("e", ""), query.get("exp", ""), query.get("sig", ""))
    return web.Response(text="Thank you: careline will send its emails to this address.\n", content_type="text/plain")


def setup(app: web.Application) -> None:
    """Add the unsubscribe and confirmation routes."""
    app.router.add_get("/api/email/confirm", confirm)
    app.router.add_route("GET", "/api/email/unsubscribe", unsubscribe)
    app.router.add_route("POST", "/api/email/unsubscribe", unsubscribe)
