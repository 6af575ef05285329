"""The Notification record shared by the notifications store and its broadcast receipts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stores.mongo import Doc

PUSH_NONE, PUSH_HELD, PUSH_SENDING, PUSH_DONE = "none", "held", "sending", "done"


@dataclass(frozen=True)
class Notification:
    """One stored notification of one user."""

    id: str
    user_id: str
    seq: int
    category: str
    title: str
    body: str
    data: dict[str, Any]
    critical: bool
    read_at: datetime | None
    created_at: datetime
    push_state: str = PUSH_NONE
    silent: bool = False



@dataclass(frozen=True)
class NewNotification:
    """A notification about to be stored, with how it is delivered.

    `live`: it reached a socket in-app when created; `read_at`: set when it is shown nowhere in-app
    (stored read and silent); `push_state`: none, held (quiet hours) or sending.
    """

    category: str
    title: str
    body: str
    data: dict[str, Any]
    critical: bool = False
    live: bool = False
    push_state: str = PUSH_NONE
    read_at: datetime | None = None
    dedupe_key: str | None = None
    collapse_key: str | None = None


def content_doc(new: NewNotification) -> Doc:
    """The stored fields of a new notification (the keys only when given)."""
    doc: Doc = {"category": new.category, "title": new.title, "body": new.body, "data": new.data,
                "critical": new.critical, "live": new.live, "pushState": new.push_state}
    if new.read_at is not None:
        doc.update(readAt=new.read_at, silent=True)
    if new.dedupe_key is not None:
        doc["dedupeKey"] = new.dedupe_key
    if new.collapse_key is not None:
        doc["collapseKey"] = new.collapse_key
    return doc


def notification(doc: Doc) -> Notification:
    """From a document of `notifications` (`ref` is the public id)."""
    return Notification(id=doc["ref"], user_id=doc["userId"], seq=doc["seq"], category=doc["category"],
                        title=doc["title"], body=doc["body"], data=doc.get("data") or {},
                        critical=bool(doc.get("critical")), read_at=doc.get("readAt"),
                        created_at=doc["createdAt"], push_state=doc.get("pushState", PUSH_NONE),
                        silent=bool(doc.get("silent")))
