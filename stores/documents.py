"""`documents`: generated files (PDF receipts, worksheet exports) waiting to be downloaded once.

Content is sealed with the message keys (never on disk in clear); a document expires after its link's
lifetime (TTL index) and is deleted by its first download.
"""
from __future__ import annotations

from datetime import datetime

from bson import Binary
from pymongo import ASCENDING

from stores.crypto import Cipher, Sealed
from stores.mongo import Database, new_id


class DocumentStore:
    """Sealed one-time documents."""

    def __init__(self, db: Database, cipher: Cipher) -> None:
        self._documents = db["documents"]
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        """Expired documents go."""
        await self._documents.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=0)

    async def put(self, owner_id: str, filename: str, mime: str, content: bytes, expires_at: datetime) -> str:
        """Store a document for its owner until `expires_at`; returns its id."""
        document_id = new_id()
        sealed = self._cipher.seal(content, document_id.encode())
        await self._documents.insert_one({"_id": document_id, "ownerId": owner_id, "filename": filename,
                                          "mime": mime, "kid": sealed.kid, "nonce": Binary(sealed.nonce),
                                          "data": Binary(sealed.data), "expiresAt": expires_at})
        return document_id

    async def take(self, document_id: str, owner_id: str, now: datetime) -> tuple[str, str, bytes] | None:
        """(filename, mime, content) of an unexpired document of `owner_id`, deleted as it is read."""
        doc = await self._documents.find_one_and_delete({"_id": document_id, "ownerId": owner_id,
                                                         "expiresAt": {"$gt": now}})
        if doc is None:
            return None
        content = self._cipher.open(Sealed(doc["kid"], bytes(doc["nonce"]), bytes(doc["data"])), document_id.encode())
        return doc["filename"], doc["mime"], content
