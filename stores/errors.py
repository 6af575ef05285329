"""Recognises dependency failures (database, Redis) so callers can answer `unavailable`."""
from __future__ import annotations

from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_DEPENDENCY_ERRORS = (
    AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError, RedisConnectionError, RedisTimeoutError,
    ConnectionRefusedError,
)


def is_dependency_failure(exc: BaseException) -> bool:
    """True when `exc` means a store is unreachable rather than a bug."""
    return isinstance(exc, _DEPENDENCY_ERRORS)
