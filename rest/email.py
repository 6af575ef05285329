"""`GET|POST /api/email/unsubscribe?u=&c=&sig=`: a signed link from a notification email (no login) that
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


def setup(app: web.Application) -> None:
    """Add the unsubscribe route."""
    app.router.add_route("GET", "/api/email/unsubscribe", unsubscribe)
    app.router.add_route("POST", "/api/email/unsubscribe", unsubscribe)
