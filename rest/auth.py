"""Authentication for REST views: a Bearer token, or the session cookie with its Origin and CSRF checks."""
from __future__ import annotations

from aiohttp import web

from errors import Unauthorized
from handlers.auth import User
from handlers.credentials import CSRF_HEADER, check_cookie_origin, check_csrf, find_credentials
from rest.app_keys import SHARED


def require_user(request: web.Request) -> User:
    """The caller from `Authorization: Bearer <jwt>` or the session cookie, or Unauthorized / Forbidden."""
    shared = request.app[SHARED]
    headers = request.headers
    found = find_credentials(shared.config, None, headers.get("Authorization"), headers.get("Cookie"))
    if found.token is None:
        raise Unauthorized("A bearer token is required")
    if found.from_cookie:
        check_cookie_origin(shared.config, headers.get("Origin"), required=False)
        check_csrf(shared.config, request.method, headers.get(CSRF_HEADER), headers.get("Cookie"))
    return shared.auth.verify(found.token).user
