"""Uploaded files: metadata in `uploads`, encrypted content in GridFS (bucket `uploadfiles`).

Content is stored as frames `len(4) | nonce(12) | AES-GCM ciphertext`, one per chunk of
up to 255 KiB; each frame's associated data names the upload, the frame index and whether
it is the last one, so frames cannot be reordered, swapped or truncated.
"""
from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING

from stores.crypto import Cipher, DecryptionError, Sealed
from stores.mongo import Database, Doc, new_id

FRAME_PLAINTEXT = 255 * 1024
_HEADER = struct.Struct(">I12s")


@dataclass(frozen=True)
class Attachment:
    """A file as a message carries it (downloaded from `/api/uploads/{id}`)."""

    id: str
    name: str
    mime: str
    size: int


def attachment_of(doc: Doc) -> Attachment:
    """The Attachment of a stored attachment subdocument."""
    return Attachment(id=doc["id"], name=doc["name"], mime=doc["mime"], size=int(doc["size"]))


def attachment_doc(attachment: Attachment) -> Doc:
    """How a message stores one attachment."""
    return {"id": attachment.id, "name": attachment.name, "mime": attachment.mime, "size": attachment.size}


@dataclass(frozen=True)
class Upload:
    """One uploaded file's metadata."""

    id: str
    owner_id: str
    name: str
    mime: str
    size: int
    conversation_ids: tuple[str, ...]
    created_at: datetime

    def attachment(self) -> Attachment:
        """The upload as a message attachment."""
        return Attachment(id=self.id, name=self.name, mime=self.mime, size=self.size)


def _upload(doc: Doc) -> Upload:
    return Upload(id=doc["_id"], owner_id=doc["ownerId"], name=doc["name"], mime=doc["mime"], size=doc["size"],
                  conversation_ids=tuple(doc.get("conversationIds", ())), created_at=doc["createdAt"])


@dataclass(frozen=True)
class Usage:
    """What one user uploaded in a window."""

    count: int
    bytes: int
    oldest: datetime | None


def _aad(upload_id: str, index: int, last: bool) -> bytes:
    return f"{upload_id}:{index}:{int(last)}".encode()


class UploadWriter:
    """Encrypts and writes one upload's content frame by frame; `commit` records its metadata."""

    def __init__(self, store: UploadStore, upload_id: str) -> None:
        self._store = store
        self.upload_id = upload_id
        self._grid = store.bucket.open_upload_stream_with_id(upload_id, upload_id)
        self._pending = b""
        self._index = 0
        self.size = 0

    async def write(self, data: bytes) -> None:
        """Add plaintext; full frames are encrypted and written at once."""
        self._pending += data
        self.size += len(data)
        while len(self._pending) > FRAME_PLAINTEXT:
            await self._frame(self._pending[:FRAME_PLAINTEXT], last=False)
            self._pending = self._pending[FRAME_PLAINTEXT:]

    async def _frame(self, plaintext: bytes, last: bool) -> None:
        sealed = self._store.cipher.seal(plaintext, _aad(self.upload_id, self._index, last))
        await self._grid.write(_HEADER.pack(len(sealed.data), sealed.nonce) + sealed.kid.encode().ljust(16, b"\0")
                               + sealed.data)
        self._index += 1

    async def commit(self, owner_id: str, name: str, mime: str, now: datetime) -> Upload:
        """Write the last frame and the metadata document."""
        await self._frame(self._pending, last=True)
        await self._grid.close()
        doc = {"_id": self.upload_id, "ownerId": owner_id, "name": name, "mime": mime, "size": self.size,
               "conversationIds": [], "messageIds": [], "createdAt": now}
        await self._store.uploads.insert_one(doc)
        return _upload(doc)

    async def abort(self) -> None:
        """Discard everything written so far."""
        await self._grid.abort()


class UploadStore:
    """Named queries on uploads and their encrypted content."""

    def __init__(self, db: Database, cipher: Cipher) -> None:
        self.uploads = db["uploads"]
        self.bucket = AsyncGridFSBucket(db, bucket_name="uploadfiles")
        self.cipher = cipher

    async def ensure_indexes(self) -> None:
        """Indexes for the queries below."""
        await self.uploads.create_index([("ownerId", ASCENDING), ("_id", ASCENDING)])
        await self.uploads.create_index([("ownerId", ASCENDING), ("createdAt", ASCENDING)])
        await self.uploads.create_index([("conversationIds", ASCENDING), ("createdAt", ASCENDING)])

    async def usage_since(self, owner_id: str, since: datetime) -> Usage:
        """What the owner uploaded since `since`: count, bytes, and when the oldest of them was uploaded."""
        cursor = self.uploads.find({"ownerId": owner_id, "createdAt": {"$gte": since}}, {"size": 1, "createdAt": 1})
        docs = [doc async for doc in cursor]
        return Usage(len(docs), sum(int(doc["size"]) for doc in docs),
                     min((doc["createdAt"] for doc in docs), default=None))

    async def orphans(self, before: datetime, limit: int = 500) -> list[str]:
        """Uploads never sent in a message and older than `before`."""
        cursor = self.uploads.find({"conversationIds": [], "createdAt": {"$lt": before}}, {"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def delete_if(self, upload_id: str, condition: Doc) -> bool:
        """Delete an upload and its content if its metadata still matches `condition`."""
        removed = await self.uploads.find_one_and_delete({"_id": upload_id, **condition}, {"_id": 1})
        if removed is None:
            return False
        try:
            await self.bucket.delete(upload_id)
        except NoFile:
            pass
        return True

    async def delete_orphan(self, upload_id: str, before: datetime) -> bool:
        """Delete an upload still unsent and older than `before` (a send racing the sweep wins)."""
        return await self.delete_if(upload_id, {"conversationIds": [], "createdAt": {"$lt": before}})

    async def release(self, ids: list[str], message_id: str) -> int:
        """A message carrying these uploads was deleted: delete those no other message carries."""
        if not ids:
            return 0
        await self.uploads.update_many({"_id": {"$in": ids}}, {"$pull": {"messageIds": message_id}})
        return sum([await self.delete_if(upload_id, {"messageIds": []}) for upload_id in ids])

    def writer(self) -> UploadWriter:
        """Start a new upload."""
        return UploadWriter(self, new_id())

    async def get(self, upload_id: str) -> Upload | None:
        """One upload's metadata."""
        doc = await self.uploads.find_one({"_id": upload_id})
        return _upload(doc) if doc else None

    async def owned(self, ids: list[str], owner_id: str) -> list[Attachment]:
        """Attachment objects for those of `ids` that `owner_id` uploaded, in the order asked."""
        found = {doc["_id"]: _upload(doc) async for doc in self.uploads.find({"_id": {"$in": ids},
                                                                              "ownerId": owner_id})}
        return [found[i].attachment() for i in ids if i in found]

    async def share(self, ids: list[str], conversation_id: str, message_id: str) -> None:
        """Record that these uploads were sent in a message of a conversation (its members may download them)."""
        if ids:
            await self.uploads.update_many({"_id": {"$in": ids}}, {"$addToSet": {"conversationIds": conversation_id,
                                                                                 "messageIds": message_id}})

    async def content(self, upload_id: str) -> AsyncIterator[bytes]:
        """The decrypted content, frame by frame; raises DecryptionError if anything was tampered with."""
        try:
            grid = await self.bucket.open_download_stream(upload_id)
        except NoFile:
            raise DecryptionError("content missing") from None
        index, last = 0, False
        while not last:
            header = await grid.read(_HEADER.size + 16)
            if len(header) < _HEADER.size + 16:
                raise DecryptionError("content truncated")
            length, nonce = _HEADER.unpack(header[:_HEADER.size])
            kid = header[_HEADER.size:].rstrip(b"\0").decode()
            sealed = Sealed(kid, nonce, await grid.read(length))
            last = grid.tell() >= grid.length
            yield self.cipher.open(sealed, _aad(upload_id, index, last))
            index += 1
