"""Uploads: size limit while streaming, type from content, and who may download."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from errors import NotFound, PayloadTooLarge, UnsupportedMediaType
from handlers.auth import User
from handlers.chat.filetypes import SNIFF_BYTES, TextCheck, safe_name, sniff
from stores.chat.uploads import Upload, UploadStore, UploadWriter

# (user_id, conversation_ids) -> is the user a member of any of them; provided by chat.
Membership = Callable[[str, list[str]], Awaitable[bool]]


async def _no_membership(user_id: str, conversation_ids: list[str]) -> bool:
    return False


class UploadHandler:
    """Accepts uploads and decides downloads."""

    def __init__(self, store: UploadStore, max_bytes: int, membership: Membership | None = None) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.membership = membership or _no_membership

    async def save(self, owner: User, declared_name: str | None, chunks: AsyncIterator[bytes]) -> Upload:
        """Stream an upload into encrypted storage; 413 past the limit, 415 for unaccepted content."""
        writer = self.store.writer()
        try:
            mime = await self._stream(writer, chunks)
            return await writer.commit(owner.id, safe_name(declared_name, mime), mime)
        except BaseException:
            await writer.abort()
            raise

    async def _stream(self, writer: UploadWriter, chunks: AsyncIterator[bytes]) -> str:
        head, binary_type, text = b"", None, TextCheck()
        async for chunk in chunks:
            if writer.size + len(chunk) > self.max_bytes:
                raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes")
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
                binary_type = sniff(head)
            if binary_type is None and not text.feed(chunk) and len(head) >= SNIFF_BYTES:
                raise UnsupportedMediaType("Accepted types: PNG, JPEG, GIF, WebP, PDF, plain text")
            await writer.write(chunk)
        if binary_type is None and not (writer.size and text.feed(b"", final=True)):
            raise UnsupportedMediaType("Accepted types: PNG, JPEG, GIF, WebP, PDF, plain text")
        return binary_type or "text/plain"

    async def readable(self, user: User, upload_id: str) -> Upload:
        """The upload if `user` may download it (uploader, or member of a conversation it was sent to)."""
        upload = await self.store.get(upload_id)
        if upload is None:
            raise NotFound("No such file")
        if upload.owner_id == user.id:
            return upload
        if upload.conversation_ids and await self.membership(user.id, list(upload.conversation_ids)):
            return upload
        raise NotFound("No such file")
