"""`billing_requests`: what a creating request with a `requestId` produced, so a repeat returns it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from errors import RequestIdReused
from stores.mongo import Database, insert_or_existing


class RequestStore:
    """Idempotency records keyed by (user, kind, requestId), each with a fingerprint of its payload."""

    def __init__(self, db: Database) -> None:
        self._requests = db["billing_requests"]

    async def ensure_indexes(self) -> None:
        """Everything is by `_id`."""

    async def claim(self, user_id: str, kind: str, request_id: str, fingerprint: str,
                    now: datetime) -> tuple[str | None, bool]:
        """(result id so far, claimed): claimed=True when this call is the first with the key.

        A repeat with another payload is a `Conflict`.
        """
        key = f"{user_id}|{kind}|{request_id}"
        doc, created = await insert_or_existing(
            self._requests, {"_id": key, "fingerprint": fingerprint, "resultId": None, "at": now}, {"_id": key})
        if doc["fingerprint"] != fingerprint:
            raise RequestIdReused("This requestId was used with another payload")
        return doc.get("resultId"), created

    async def finish(self, user_id: str, kind: str, request_id: str, result_id: str) -> None:
        """Record what the request produced."""
        await self._requests.update_one({"_id": f"{user_id}|{kind}|{request_id}"}, {"$set": {"resultId": result_id}})

    async def forget(self, user_id: str, kind: str, request_id: str) -> None:
        """Drop a claim whose request failed before producing anything (a retry may try again)."""
        query: dict[str, Any] = {"_id": f"{user_id}|{kind}|{request_id}", "resultId": None}
        await self._requests.delete_one(query)
