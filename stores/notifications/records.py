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

    def to_dict(self) -> dict[str, Any]:
        """The wire form (times stay datetimes; the handler formats them)."""
        return {"id": self.id, "seq": self.seq, "category": self.category, "title": self.title,
                "body": self.body, "data": self.data, "critical": self.critical, "readAt": self.read_at,
                "createdAt": self.created_at}


def notification(doc: Doc) -> Notification:
    """From a document of `notifications` (`ref` is the public id)."""
    return Notification(id=doc["ref"], user_id=doc["userId"], seq=doc["seq"], category=doc["category"],
                        title=doc["title"], body=doc["body"], data=doc.get("data") or {},
                        critical=bool(doc.get("critical")), read_at=doc.get("readAt"),
                        created_at=doc["createdAt"], push_state=doc.get("pushState", PUSH_NONE),
                        silent=bool(doc.get("silent")))
