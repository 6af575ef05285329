"""The one error hierarchy; translated to acks in realtime/base.py and to HTTP in rest/middleware.py."""
from __future__ import annotations

from typing import Any

ERROR_CODES = (
    "invalid_payload", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited",
    "precondition_failed", "payment_required", "unavailable", "internal",
)


class AppError(Exception):
    """A failure the caller should see, with a code from the contract's closed list."""

    code = "internal"
    http_status = 500
    default_message = "Internal error"

    def __init__(self, message: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of the ack envelope."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return error


class InvalidPayload(AppError):
    """The payload does not match the request's schema."""

    code, http_status, default_message = "invalid_payload", 400, "Invalid payload"


class Unauthorized(AppError):
    """No valid credentials."""

    code, http_status, default_message = "unauthorized", 401, "Unauthorized"


class TokenExpired(Unauthorized):
    """The credentials were valid but have expired."""

    code, default_message = "token_expired", "Token expired"


class Forbidden(AppError):
    """Authenticated, but not allowed to do this."""

    code, http_status, default_message = "forbidden", 403, "Forbidden"


class NotFound(AppError):
    """No such resource, or one the caller may not know about."""

    code, http_status, default_message = "not_found", 404, "Not found"


class Conflict(AppError):
    """The request collides with the current state (taken slot, duplicate)."""

    code, http_status, default_message = "conflict", 409, "Conflict"


class RequestIdReused(Conflict):
    """A `requestId` came back with another payload (CONTRACT §1): `details.reason` says so."""

    def __init__(self, message: str = "This requestId was used for a different request") -> None:
        super().__init__(message, {"reason": "requestId reused"})


class RateLimited(AppError):
    """Too many requests; retry after the given delay."""

    code, http_status, default_message = "rate_limited", 429, "Too many requests"

    def __init__(self, retry_after_ms: int, message: str | None = None) -> None:
        super().__init__(message, {"retryAfterMs": int(retry_after_ms)})
        self.retry_after_ms = int(retry_after_ms)


class PreconditionFailed(AppError):
    """A business rule forbids this now (outside a window, wrong state)."""

    code, http_status, default_message = "precondition_failed", 412, "Precondition failed"


class PaymentRequired(AppError):
    """Payment is needed before this can happen."""

    code, http_status, default_message = "payment_required", 402, "Payment required"


class Unavailable(AppError):
    """A dependency (database, Redis, Stripe) is down."""

    code, http_status, default_message = "unavailable", 503, "Service unavailable"


class Internal(AppError):
    """Something unexpected; details are logged, never returned."""


class PayloadTooLarge(InvalidPayload):
    """An upload over the size limit (HTTP 413)."""

    http_status, default_message = 413, "Payload too large"


class UnsupportedMediaType(InvalidPayload):
    """An upload whose content is not an accepted type (HTTP 415)."""

    http_status, default_message = 415, "Unsupported media type"
