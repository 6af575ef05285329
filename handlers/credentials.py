"""Where a request's token comes from: `auth.token`, an `Authorization: Bearer` header, or (for browsers,
when AUTH_COOKIE_NAME is set) an httpOnly cookie; and the checks a cookie needs.

Browsers send cookies on cross-site requests, WebSocket handshakes included, so a cookie proves
nothing about which page is asking: a cookie session is accepted only with an `Origin` listed in
CORS_ORIGINS, and a state-changing REST request also needs `X-CSRF-Token` equal to the readable
CSRF_COOKIE_NAME cookie (double submit: a page of another origin can neither read that cookie nor set
the header on a cross-site request without a CORS preflight careline refuses).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from config import Config
from errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Credentials:
    """A token and whether it came from the session cookie."""

    token: object
    from_cookie: bool = False


def cookies(header: str | None) -> dict[str, str]:
    """The cookies of a `Cookie` header (an unreadable header: none)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <jwt>` header."""
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def find_credentials(config: Config, explicit: object, authorization: str | None,
                     cookie_header: str | None) -> Credentials:
    """The token from the connect payload, else the Bearer header, else the session cookie (never the query)."""
    if explicit is not None:
        return Credentials(explicit)
    token = bearer(authorization)
    if token is not None:
        return Credentials(token)
    if config.auth_cookie_name:
        from_cookie = cookies(cookie_header).get(config.auth_cookie_name)
        if from_cookie:
            return Credentials(from_cookie, from_cookie=True)
    return Credentials(None)


def check_cookie_origin(config: Config, origin: str | None, required: bool) -> None:
    """A cookie session only from a listed origin (`required`: an Origin header must be there, as on every
    WebSocket handshake a browser makes)."""
    if origin is None and not required:
        return
    if origin not in config.cors_origins:
        raise Forbidden("This origin may not use the session cookie")


def check_csrf(config: Config, method: str, header: str | None, cookie_header: str | None) -> None:
    """State-changing requests with a cookie session repeat the CSRF cookie in `X-CSRF-Token`."""
    if method in SAFE_METHODS:
        return
    expected = cookies(cookie_header).get(config.csrf_cookie_name, "")
    if not expected or not header or not hmac.compare_digest(expected.encode(), header.encode()):
        raise Forbidden("A valid X-CSRF-Token header is required")
