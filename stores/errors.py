"""Recognises dependency failures (database, Redis) so callers can answer `unavailable`, naming which."""
from __future__ import annotations

from pymongo.errors import ConnectionFailure, PyMongoError

from stores.redis import REDIS_DOWN


def failed_dependency(exc: BaseException) -> str | None:
    """`mongodb` or `redis` when `exc` means that store is unreachable or too slow, else None (a bug)."""
    if isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout):
        return "mongodb"
    if isinstance(exc, REDIS_DOWN):
        return "redis"
    if isinstance(exc, ConnectionRefusedError):
        return "store"
    return None


def is_dependency_failure(exc: BaseException) -> bool:
    """True when `exc` means a store is unreachable or too slow rather than a bug."""
    return failed_dependency(exc) is not None
