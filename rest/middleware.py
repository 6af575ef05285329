"""The REST side of error translation, and CORS for REST routes."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from errors import AppError, Internal, Unavailable
from rest.app_keys import CONFIG
from stores.errors import failed_dependency

log = logging.getLogger("careline.rest")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SOCKET_PATH = "/socket.io"


def error_response(error: AppError) -> web.Response:
    """An AppError as JSON with its HTTP status."""
    return web.json_response({"error": error.to_dict()}, status=error.http_status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn AppErrors and unexpected failures into the JSON error shape."""
    if request.path.startswith(_SOCKET_PATH):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "invalid_payload",
                413: "invalid_payload", 415: "invalid_payload"}.get(exc.status, "invalid_payload")
        return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
    except AppError as error:
        return error_response(error)
    except Exception as exc:
        dependency = failed_dependency(exc)
        if dependency is not None:
            return error_response(Unavailable(details={"dependency": dependency}))
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(Internal())


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for REST routes from CORS_ORIGINS (Socket.IO does its own)."""
    if request.path.startswith(_SOCKET_PATH):
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = request.app[CONFIG].allowed_origins
    permitted = origin is not None and (allowed == "*" or origin in allowed)
    if request.method == "OPTIONS" and permitted and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-CSRF-Token"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if permitted and origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response
