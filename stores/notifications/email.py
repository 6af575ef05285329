"""The email queue: `email_outbox` (one item per notification to email: queued, sending, sent, failed or
dropped) and `email_state` (when each user was last emailed about each category, for digests).

An item is keyed by its notification id, so enqueueing twice is one item. A sender claims every due item of
one (user, category) at once with a lease (compare-and-set on the item's state), so two processes never send
the same item; a lease that runs out (its process died) puts the items back in the queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.mongo import Database, Doc, new_id

QUEUED, SENDING, SENT, FAILED, DROPPED = "queued", "sending", "sent", "failed", "dropped"


@dataclass(frozen=True)
class EmailItem:
    """One notification waiting to be emailed (its title and body are already neutral)."""

    id: str
    user_id: str
    category: str
    critical: bool
    title: str
    body: str
    tries: int
    created_at: datetime


@dataclass(frozen=True)
class QueueDepth:
    """What /metrics and `python server.py jobs` show of the queue."""

    queued: int
    oldest: datetime | None
    sent: int
    failed: int
    retrying: int


def _item(doc: Doc) -> EmailItem:
    return EmailItem(doc["_id"], doc["userId"], doc["category"], doc["critical"], doc["title"], doc["body"],
                     doc.get("tries", 0), doc["createdAt"])


class EmailQueue:
    """Named queries on the email outbox and the digest state."""

    def __init__(self, db: Database) -> None:
        self._outbox = db["email_outbox"]
        self._state = db["email_state"]

    async def ensure_indexes(self) -> None:
        """Due items by state and time; the items of one user and category."""
        await self._outbox.create_index([("state", ASCENDING), ("dueAt", ASCENDING)])
        await self._outbox.create_index([("userId", ASCENDING), ("category", ASCENDING), ("state", ASCENDING)])
        await self._outbox.create_index([("leaseToken", ASCENDING)])

    async def enqueue(self, notification_id: str, user_id: str, category: str, critical: bool, title: str,
                      body: str, due_at: datetime, now: datetime) -> None:
        """Queue one notification (again: nothing)."""
        try:
            await self._outbox.insert_one({"_id": notification_id, "userId": user_id, "category": category,
                                           "critical": critical, "title": title, "body": body, "state": QUEUED,
                                           "dueAt": due_at, "tries": 0, "createdAt": now})
        except DuplicateKeyError:
            return

    async def due_groups(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]:
        """(user, category) pairs with an item due now, oldest first."""
        cursor = self._outbox.find({"state": QUEUED, "dueAt": {"$lte": now}}, {"userId": 1, "category": 1})
        groups: dict[tuple[str, str], None] = {}
        async for doc in cursor.sort("dueAt", ASCENDING).limit(limit):
            groups[(doc["userId"], doc["category"])] = None
        return list(groups)

    async def last_sent(self, user_id: str, category: str) -> datetime | None:
        """When the user was last emailed about the category."""
        doc = await self._state.find_one({"_id": f"{user_id}|{category}"})
        return doc["lastSentAt"] if doc else None

    async def claim(self, user_id: str, category: str, now: datetime, lease: timedelta) -> tuple[str, list[EmailItem]]:
        """Take every due item of (user, category) for this sender: (lease token, items)."""
        token = new_id()
        await self._outbox.update_many(
            {"userId": user_id, "category": category, "state": QUEUED, "dueAt": {"$lte": now}},
            {"$set": {"state": SENDING, "leaseToken": token, "leaseUntil": now + lease}})
        items = [_item(doc) async for doc in self._outbox.find({"leaseToken": token, "state": SENDING})]
        return token, sorted(items, key=lambda item: item.created_at)

    async def sent(self, token: str, user_id: str, category: str, now: datetime) -> None:
        """The claimed items went out in one email."""
        await self._outbox.update_many({"leaseToken": token, "state": SENDING},
                                       {"$set": {"state": SENT, "sentAt": now}, "$unset": {"leaseUntil": ""}})
        await self._state.update_one({"_id": f"{user_id}|{category}"}, {"$set": {"lastSentAt": now}}, upsert=True)

    async def retry(self, token: str, due_at: datetime, reason: str) -> None:
        """The SMTP server refused for now: back in the queue at `due_at`, one try more."""
        await self._outbox.update_many({"leaseToken": token, "state": SENDING},
                                       {"$set": {"state": QUEUED, "dueAt": due_at, "lastError": reason},
                                        "$inc": {"tries": 1}, "$unset": {"leaseToken": "", "leaseUntil": ""}})

    async def retry_later(self, token: str, due_at: datetime) -> None:
        """Not yet (a digest window is open): back in the queue until `due_at`, no try spent."""
        await self._outbox.update_many({"leaseToken": token, "state": SENDING},
                                       {"$set": {"state": QUEUED, "dueAt": due_at},
                                        "$unset": {"leaseToken": "", "leaseUntil": ""}})

    async def give_up(self, token: str, state: str, reason: str, now: datetime) -> None:
        """Never to be sent (`failed` after the last try, `dropped` without an address), with why."""
        await self._outbox.update_many({"leaseToken": token, "state": SENDING},
                                       {"$set": {"state": state, "lastError": reason, "endedAt": now},
                                        "$unset": {"leaseUntil": ""}})

    async def release_expired(self, now: datetime) -> int:
        """Items whose sender died mid-send go back to the queue (they may be sent twice: at least once)."""
        result = await self._outbox.update_many({"state": SENDING, "leaseUntil": {"$lt": now}},
                                                {"$set": {"state": QUEUED}, "$unset": {"leaseToken": ""}})
        return int(result.modified_count)

    async def retry_failed(self, now: datetime) -> int:
        """An admin asked: every failed item is queued again with fresh tries."""
        result = await self._outbox.update_many({"state": FAILED}, {"$set": {"state": QUEUED, "dueAt": now,
                                                                             "tries": 0}})
        return int(result.modified_count)

    async def depth(self) -> QueueDepth:
        """Queue figures for monitoring."""
        oldest = await self._outbox.find_one({"state": QUEUED}, {"createdAt": 1}, sort=[("dueAt", ASCENDING)])
        count = self._outbox.count_documents
        return QueueDepth(queued=await count({"state": QUEUED}), oldest=oldest["createdAt"] if oldest else None,
                          sent=await count({"state": SENT}), failed=await count({"state": FAILED}),
                          retrying=await count({"state": QUEUED, "tries": {"$gt": 0}}))
