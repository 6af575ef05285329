"""The `request_keys` collection: which payload each `(user, event, requestId)` was first used for.

CONTRACT §1: a repeat of a `requestId` returns the first result; a repeat with a different payload is
refused with `conflict`. Every creating request claims its key here before it runs (one insert; the
unique `_id` settles two processes racing). Requests whose handler is not idempotent by itself keep
their first ack here too, and a repeat is answered from it. Keys expire after `KEEP_DAYS` (the
feature's own idempotency, e.g. a booking's unique requestId, still holds after that).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.mongo import Database

KEEP_DAYS = 7


@dataclass(frozen=True)
class RequestKey:
    """A claimed key: the payload's fingerprint and, once answered, the first ack's data (replayed ones)."""

    fingerprint: str
    answered: bool
    result: Any


class RequestKeyStore:
    """Claims of request ids, per user and event."""

    def __init__(self, db: Database) -> None:
        self._keys = db["request_keys"]

    async def ensure_indexes(self) -> None:
        """Expire old keys."""
        await self._keys.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=0)

    @staticmethod
    def _id(user_id: str, event: str, request_id: str) -> str:
        return f"{user_id}\n{event}\n{request_id}"

    async def claim(self, user_id: str, event: str, request_id: str, fingerprint: str,
                    now: datetime) -> RequestKey | None:
        """Claim the key for this payload; the earlier claim when the key was used before."""
        key = self._id(user_id, event, request_id)
        try:
            await self._keys.insert_one({"_id": key, "fingerprint": fingerprint, "expiresAt": now + timedelta(
                days=KEEP_DAYS)})
            return None
        except DuplicateKeyError:
            doc = await self._keys.find_one({"_id": key})
        if doc is None:  # expired between the insert and the read: the claim is free again
            return await self.claim(user_id, event, request_id, fingerprint, now)
        return RequestKey(doc["fingerprint"], "result" in doc, doc.get("result"))

    async def answered(self, user_id: str, event: str, request_id: str, result: Any) -> None:
        """Keep the first ack's data, to answer repeats with."""
        await self._keys.update_one({"_id": self._id(user_id, event, request_id)}, {"$set": {"result": result}})

    async def release(self, user_id: str, event: str, request_id: str) -> None:
        """Forget a claim whose request changed nothing (it failed), so it can be sent again."""
        await self._keys.delete_one({"_id": self._id(user_id, event, request_id), "result": {"$exists": False}})
