"""The `notifications` collection, its seq counter and the per-user unread counters."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.mongo import Database, Doc, new_id, utcnow

BATCH = 1000
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


def _notification(doc: Doc) -> Notification:
    return Notification(id=doc["ref"], user_id=doc["userId"], seq=doc["seq"], category=doc["category"],
                        title=doc["title"], body=doc["body"], data=doc.get("data") or {},
                        critical=bool(doc.get("critical")), read_at=doc.get("readAt"),
                        created_at=doc["createdAt"], push_state=doc.get("pushState", PUSH_NONE),
                        silent=bool(doc.get("silent")))


def _partial(field: str) -> Doc:
    return {"unique": True, "partialFilterExpression": {field: {"$exists": True}}}


class NotificationStore:
    """Named queries on notifications; `ref` is the public id (shared by the copies of one broadcast)."""

    def __init__(self, db: Database) -> None:
        self._items = db["notifications"]
        self._counters = db["notification_counters"]
        self._held = db["notification_held_pushes"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on (few: a broadcast writes thousands at once)."""
        # seq comes from one counter, so (userId, seq) needs no unique check (costly on bulk inserts)
        await self._items.create_index([("userId", ASCENDING), ("seq", ASCENDING)])
        await self._items.create_index([("unreadBy", ASCENDING)], sparse=True)
        await self._items.create_index([("userId", ASCENDING), ("dedupeKey", ASCENDING)], **_partial("dedupeKey"))
        await self._items.create_index([("userId", ASCENDING), ("collapseKey", ASCENDING)],
                                       **_partial("collapseKey"))
        await self._held.create_index([("pushAfter", ASCENDING)])

    async def next_seq(self) -> int:
        """Allocate the next seq: one counter for everyone, so each user's stream increases monotonically
        and every copy of a broadcast can share one seq."""
        while True:
            try:
                doc = await self._counters.find_one_and_update({"_id": "seq"}, {"$inc": {"seq": 1}}, upsert=True,
                                                               return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                doc = None
            if doc is not None:  # the first-ever upserts can race; the losers retry as updates
                return int(doc["seq"])

    async def create(self, user_id: str, seq: int, fields: Doc) -> Notification | None:
        """Insert one notification; None when its dedupeKey or collapseKey already exists for the user."""
        ref = new_id()
        doc = {"_id": ref, "ref": ref, "userId": user_id, "seq": seq, "readAt": None, "unreadBy": user_id,
               "createdAt": utcnow(), **fields}
        if doc["readAt"] is not None:
            del doc["unreadBy"]
        try:
            await self._items.insert_one(doc)
        except DuplicateKeyError:
            return None
        return _notification(doc)

    async def create_many(self, user_ids: list[str], fields: Doc, live: set[str]) -> Notification:
        """Insert the same notification (one `ref`, one `seq`) for many users, in batches."""
        ref, now, seq = new_id(), utcnow(), await self.next_seq()
        for start in range(0, len(user_ids), BATCH):
            batch = user_ids[start:start + BATCH]
            docs = [{"_id": new_id(), "ref": ref, "userId": uid, "seq": seq, "unreadBy": uid, "createdAt": now,
                     **fields} for uid in batch]
            for doc in docs:
                if doc["userId"] in live:
                    doc["live"] = True
            await self._items.insert_many(docs, ordered=False)
        return _notification({"ref": ref, "userId": "", "seq": seq, "readAt": None, "createdAt": now, **fields})

    async def unread_count(self, user_id: str) -> int:
        """How many of the user's notifications are unread (`unreadBy` indexes only unread ones)."""
        return await self._items.count_documents({"unreadBy": user_id})

    async def page(self, user_id: str, *, limit: int, before_seq: int | None = None,
                   after_seq: int | None = None, unread_only: bool = False) -> list[Notification]:
        """Newest first below `before_seq`, or oldest first above `after_seq` (catch-up)."""
        query: Doc = {"unreadBy": user_id} if unread_only else {"userId": user_id}
        if after_seq is not None:
            query["seq"] = {"$gt": after_seq}
            order = ASCENDING
        else:
            if before_seq is not None:
                query["seq"] = {"$lt": before_seq}
            order = DESCENDING
        cursor = self._items.find(query).sort("seq", order).limit(limit)
        return [_notification(doc) async for doc in cursor]

    async def mark_read(self, user_id: str, refs: list[str] | None = None, collapse_key: str | None = None,
                        up_to_seq: int | None = None) -> int:
        """Mark the user's unread notifications read (these refs, this collapse key, or all); returns count.

        `up_to_seq` limits a collapse-key read to notifications whose `data.seq` is at most that.
        """
        query: Doc = {"unreadBy": user_id}
        if refs is not None:
            query["ref"] = {"$in": refs}
        if collapse_key is not None:
            query["collapseKey"] = collapse_key
        if up_to_seq is not None:
            query["data.seq"] = {"$lte": up_to_seq}
        result = await self._items.update_many(query, {"$set": {"readAt": utcnow()},
                                                       "$unset": {"collapseKey": "", "unreadBy": ""}})
        return result.modified_count

    async def unread_collapsed(self, user_ids: set[str], collapse_keys: set[str]) -> set[tuple[str, str]]:
        """Which of these users have an unread notification under one of these collapse keys."""
        cursor = self._items.find({"unreadBy": {"$in": list(user_ids)}, "collapseKey": {"$in": list(collapse_keys)}},
                                  {"userId": 1, "collapseKey": 1, "_id": 0})
        return {(doc["userId"], doc["collapseKey"]) async for doc in cursor}

    async def set_push_state(self, notification_id: str, state: str) -> None:
        """Record where a (single, not broadcast) notification's Web Push stands (sending, done)."""
        await self._items.update_one({"_id": notification_id}, {"$set": {"pushState": state}})

    async def hold_push(self, notification_id: str, push_after: datetime) -> None:
        """Queue the notification's push until quiet hours end."""
        await self._held.insert_one({"_id": notification_id, "pushAfter": push_after})

    async def claim_due_push(self, now: datetime) -> Notification | None:
        """Atomically take one held push whose quiet hours are over (safe with several processes)."""
        while (held := await self._held.find_one_and_delete({"pushAfter": {"$lte": now}})) is not None:
            doc = await self._items.find_one_and_update({"_id": held["_id"]}, {"$set": {"pushState": PUSH_SENDING}},
                                                        return_document=ReturnDocument.AFTER)
            if doc is not None:
                return _notification(doc)
        return None

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: created, delivered live in-app, and read, over [since, until)."""
        pipeline = [
            {"$match": {"createdAt": {"$gte": since, "$lt": until}}},
            {"$group": {"_id": "$category", "sent": {"$sum": 1},
                        "deliveredInApp": {"$sum": {"$cond": [{"$eq": ["$live", True]}, 1, 0]}},
                        "read": {"$sum": {"$cond": [{"$ifNull": ["$readAt", False]}, 1, 0]}}}},
        ]
        cursor = await self._items.aggregate(pipeline)
        return {doc["_id"]: {k: int(v) for k, v in doc.items() if k != "_id"} async for doc in cursor}
