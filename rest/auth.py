"""Bearer authentication for REST views."""
from __future__ import annotations

from aiohttp import web

from errors import Unauthorized
from handlers.auth import User
from rest.app_keys import SHARED


def require_user(request: web.Request) -> User:
    """The caller from `Authorization: Bearer <jwt>`, or Unauthorized."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required")
    return request.app[SHARED].auth.verify(token.strip()).user
