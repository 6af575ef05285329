"""Uploads: names and size checked while streaming, type from content, an hourly quota per user, who may
download (directly, or through a short-lived signed link), and the sweep of files never sent."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from clock import Clock
from config import Config
from errors import InvalidPayload, NotFound, PayloadTooLarge, RateLimited, UnsupportedMediaType
from handlers.auth import User
from handlers.chat.filetypes import SNIFF_BYTES, TextCheck, name_problem, safe_name, sniff
from stores.chat.uploads import Upload, UploadStore, UploadWriter
from stores.crypto import Signer

# (user_id, conversation_ids) -> is the user a member of any of them; provided by chat.
Membership = Callable[[str, list[str]], Awaitable[bool]]
QUOTA_WINDOW = timedelta(hours=1)
LINK_INFO = b"careline upload links v1"


@dataclass(frozen=True)
class UploadLink:
    """A URL that downloads one upload for one user without a token, until `expires_at`."""

    url: str
    expires_at: datetime


class UploadHandler:
    """Accepts uploads and decides downloads."""

    def __init__(self, store: UploadStore, config: Config, clock: Clock, membership: Membership) -> None:
        self.store = store
        self.max_bytes = config.upload_max_bytes
        self.config = config
        self.clock = clock
        self.membership = membership
        self.signer = Signer(config.message_keys, LINK_INFO)

    async def save(self, owner: User, declared_name: str | None, chunks: AsyncIterator[bytes]) -> Upload:
        """Stream an upload into encrypted storage; 413 past the limit, 415 for unaccepted content,
        `rate_limited` past the hourly quota."""
        problem = name_problem(declared_name)
        if problem is not None:
            raise InvalidPayload("The file name is not valid", {"file": [problem]})
        now = self.clock()
        allowance = await self._allowance(owner, now)
        writer = self.store.writer()
        try:
            mime = await self._stream(writer, chunks, allowance)
            return await writer.commit(owner.id, safe_name(declared_name, mime), mime, now)
        except BaseException:
            await writer.abort()
            raise

    async def _allowance(self, owner: User, now: datetime) -> int:
        """Bytes the owner may still upload this hour (RateLimited when the quota is used up)."""
        usage = await self.store.usage_since(owner.id, now - QUOTA_WINDOW)
        left = self.config.upload_quota_bytes_per_hour - usage.bytes
        if usage.count >= self.config.upload_quota_files_per_hour or left <= 0:
            raise self._over_quota(usage.oldest, now)
        return left

    @staticmethod
    def _over_quota(oldest: datetime | None, now: datetime) -> RateLimited:
        wait = (oldest + QUOTA_WINDOW - now) if oldest is not None else QUOTA_WINDOW
        return RateLimited(max(1, int(wait.total_seconds() * 1000)), "The hourly upload quota is used up")

    async def _stream(self, writer: UploadWriter, chunks: AsyncIterator[bytes], allowance: int) -> str:
        head, binary_type, text = b"", None, TextCheck()
        async for chunk in chunks:
            if writer.size + len(chunk) > self.max_bytes:
                raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes")
            if writer.size + len(chunk) > allowance:
                raise self._over_quota(None, self.clock())
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
                binary_type = sniff(head)
            if binary_type is None and not text.feed(chunk) and len(head) >= SNIFF_BYTES:
                raise UnsupportedMediaType("Accepted types: PNG, JPEG, GIF, WebP, PDF, plain text")
            await writer.write(chunk)
        if binary_type is None and not (writer.size and text.feed(b"", final=True)):
            raise UnsupportedMediaType("Accepted types: PNG, JPEG, GIF, WebP, PDF, plain text")
        return binary_type or "text/plain"

    async def readable(self, user_id: str, upload_id: str) -> Upload:
        """The upload if the user may download it (uploader, or member of a conversation it was sent to)."""
        upload = await self.store.get(upload_id)
        if upload is None:
            raise NotFound("No such file")
        if upload.owner_id == user_id:
            return upload
        if upload.conversation_ids and await self.membership(user_id, list(upload.conversation_ids)):
            return upload
        raise NotFound("No such file")

    # -- signed links ----------------------------------------------------------------------------

    async def link(self, user: User, upload_id: str) -> UploadLink:
        """`upload:link`: a URL that downloads the file for this user only, for UPLOAD_LINK_SECONDS."""
        upload = await self.readable(user.id, upload_id)
        expires = int(self.clock().timestamp()) + self.config.upload_link_seconds
        query = urlencode({"u": user.id, "exp": expires, "sig": self.signer.sign(_signed(upload.id, user.id, expires))})
        return UploadLink(f"/api/uploads/{upload.id}?{query}", datetime.fromtimestamp(expires, tz=self.clock().tzinfo))

    async def readable_by_link(self, upload_id: str, user_id: str, expires: str, signature: str) -> Upload:
        """The upload a signed link names, if the link is genuine, unexpired, and its user may still read it."""
        if not expires.isdigit() or not self.signer.valid(_signed(upload_id, user_id, int(expires)), signature):
            raise NotFound("No such file")
        left = int(expires) - self.clock().timestamp()
        if not 0 <= left <= self.config.upload_link_seconds:
            raise NotFound("No such file")
        return await self.readable(user_id, upload_id)

    # -- housekeeping ----------------------------------------------------------------------------

    async def sweep_orphans(self) -> int:
        """Delete uploads never sent in a message within UPLOAD_ORPHAN_HOURS; safe in many processes."""
        before = self.clock() - timedelta(hours=self.config.upload_orphan_hours)
        return sum([await self.store.delete_orphan(upload_id, before)
                    for upload_id in await self.store.orphans(before)])


def _signed(upload_id: str, user_id: str, expires: int) -> str:
    return f"{upload_id}\n{user_id}\n{expires}"
