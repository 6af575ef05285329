"""One-time download links for generated documents: short-lived, signed, bound to one document and one user.

A feature renders a document (a PDF) and calls `issue`; the caller gets `{url, expiresAt}` and downloads it
once from `GET /api/documents/{id}?u=&exp=&sig=` (rest/documents.py) within DOCUMENT_LINK_SECONDS.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from clock import Clock
from config import Config
from errors import NotFound
from stores.crypto import Signer
from stores.documents import DocumentStore

LINK_INFO = b"careline document links v1"
LINK_SECONDS = 300


@dataclass(frozen=True)
class DocumentLink:
    """Where a document can be downloaded, once, until `expires_at`."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Document:
    """A downloaded document."""

    filename: str
    mime: str
    content: bytes


class DocumentLinks:
    """Issues and redeems document links."""

    def __init__(self, store: DocumentStore, config: Config, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.signer = Signer(config.message_keys, LINK_INFO)

    async def issue(self, owner_id: str, filename: str, mime: str, content: bytes) -> DocumentLink:
        """Keep the document for LINK_SECONDS and sign a link to it for its owner."""
        expires = self.clock().replace(microsecond=0) + timedelta(seconds=LINK_SECONDS)
        document_id = await self.store.put(owner_id, filename, mime, content, expires)
        stamp = int(expires.timestamp())
        query = urlencode({"u": owner_id, "exp": stamp, "sig": self.signer.sign(f"{document_id}\n{owner_id}\n{stamp}")})
        return DocumentLink(f"/api/documents/{document_id}?{query}", expires)

    async def redeem(self, document_id: str, owner_id: str, expires: str, signature: str) -> Document:
        """The document a genuine, unexpired link names (deleted now); NotFound otherwise."""
        if not expires.isdigit() or not self.signer.valid(f"{document_id}\n{owner_id}\n{expires}", signature):
            raise NotFound("No such document")
        if int(expires) < self.clock().timestamp():
            raise NotFound("No such document")
        found = await self.store.take(document_id, owner_id, self.clock())
        if found is None:
            raise NotFound("No such document")
        return Document(*found)


def pdf_text(text: str) -> str:
    """Text the core PDF fonts can draw (Latin-1): other characters become `?`, names stay readable."""
    return text.encode("latin-1", "replace").decode("latin-1")
