"""The `notifications` collection (per-user `seq` from `notification_seqs`) and `notification_prefs`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

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
        self._seqs = db["notification_seqs"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._items.create_index([("userId", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self._items.create_index([("userId", ASCENDING), ("ref", ASCENDING)], unique=True)
        await self._items.create_index([("userId", ASCENDING), ("readAt", ASCENDING)])
        await self._items.create_index([("userId", ASCENDING), ("dedupeKey", ASCENDING)], **_partial("dedupeKey"))
        await self._items.create_index([("userId", ASCENDING), ("collapseKey", ASCENDING)],
                                       **_partial("collapseKey"))
        await self._items.create_index([("pushState", ASCENDING), ("pushAfter", ASCENDING)])
        await self._items.create_index([("createdAt", ASCENDING), ("category", ASCENDING)])

    async def next_seq(self, user_id: str) -> int:
        """Allocate the user's next seq atomically."""
        while True:
            try:
                doc = await self._seqs.find_one_and_update({"_id": user_id}, {"$inc": {"seq": 1}}, upsert=True,
                                                           return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                doc = None
            if doc is not None:  # two first-ever upserts can race; the loser retries as an update
                return int(doc["seq"])

    async def _next_seqs(self, user_ids: list[str]) -> dict[str, int]:
        """Allocate one seq for each user in two round trips (a racing single allocation is retried later)."""
        await self._seqs.bulk_write([UpdateOne({"_id": uid}, {"$inc": {"seq": 1}}, upsert=True)
                                     for uid in user_ids], ordered=False)
        return {doc["_id"]: int(doc["seq"]) async for doc in self._seqs.find({"_id": {"$in": user_ids}})}

    async def create(self, user_id: str, fields: Doc) -> Notification | None:
        """Insert one notification; None when its dedupeKey or collapseKey already exists for the user."""
        ref = new_id()
        while True:
            doc = {"_id": ref, "ref": ref, "userId": user_id, "seq": await self.next_seq(user_id),
                   "readAt": None, "createdAt": utcnow(), **fields}
            try:
                await self._items.insert_one(doc)
                return _notification(doc)
            except DuplicateKeyError:
                if await self._key_taken(user_id, fields):
                    return None
                # A broadcast raced us for this seq: take the next one.

    async def _key_taken(self, user_id: str, fields: Doc) -> bool:
        for key in ("dedupeKey", "collapseKey"):
            if key in fields and await self._items.find_one({"userId": user_id, key: fields[key]}, {"_id": 1}):
                return True
        return False

    async def create_many(self, user_ids: list[str], fields: Doc, live: set[str]) -> tuple[str, datetime]:
        """Insert the same notification for many users (one `ref`), in batches; returns (ref, createdAt)."""
        ref, now = new_id(), utcnow()
        for start in range(0, len(user_ids), BATCH):
            batch = user_ids[start:start + BATCH]
            seqs = await self._next_seqs(batch)
            docs = [{"_id": new_id(), "ref": ref, "userId": uid, "seq": seqs[uid], "readAt": None,
                     "createdAt": now, "live": uid in live, **fields} for uid in batch]
            await self._insert_batch(docs)
        return ref, now

    async def _insert_batch(self, docs: list[Doc]) -> None:
        try:
            await self._items.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            for failed in error.details.get("writeErrors", []):
                doc = docs[failed["index"]]
                doc["seq"] = await self.next_seq(doc["userId"])
                await self._items.insert_one(doc)

    async def page(self, user_id: str, *, limit: int, before_seq: int | None = None,
                   after_seq: int | None = None, unread_only: bool = False) -> list[Notification]:
        """Newest first below `before_seq`, or oldest first above `after_seq` (catch-up)."""
        query: Doc = {"userId": user_id}
        if unread_only:
            query["readAt"] = None
        if after_seq is not None:
            query["seq"] = {"$gt": after_seq}
            order = ASCENDING
        else:
            if before_seq is not None:
                query["seq"] = {"$lt": before_seq}
            order = DESCENDING
        cursor = self._items.find(query).sort("seq", order).limit(limit)
        return [_notification(doc) async for doc in cursor]

    async def unread_count(self, user_id: str) -> int:
        """How many of the user's notifications are unread."""
        return await self._items.count_documents({"userId": user_id, "readAt": None})

    async def mark_read(self, user_id: str, refs: list[str] | None = None, collapse_key: str | None = None,
                        up_to_seq: int | None = None) -> int:
        """Mark the user's unread notifications read (these refs, this collapse key, or all); returns count.

        `up_to_seq` limits a collapse-key read to notifications whose `data.seq` is at most that.
        """
        query: Doc = {"userId": user_id, "readAt": None}
        if refs is not None:
            query["ref"] = {"$in": refs}
        if collapse_key is not None:
            query["collapseKey"] = collapse_key
        if up_to_seq is not None:
            query["data.seq"] = {"$lte": up_to_seq}
        result = await self._items.update_many(query, {"$set": {"readAt": utcnow()},
                                                       "$unset": {"collapseKey": ""}})
        return result.modified_count

    async def get(self, user_id: str, ref: str) -> Notification | None:
        """One notification of the user by public id."""
        doc = await self._items.find_one({"userId": user_id, "ref": ref})
        return _notification(doc) if doc else None

    async def set_push_state(self, user_id: str, ref: str, state: str, push_after: datetime | None = None) -> None:
        """Record where the notification's Web Push stands (held until `push_after`, sending, done)."""
        update: Doc = {"$set": {"pushState": state}}
        if push_after is not None:
            update["$set"]["pushAfter"] = push_after
        await self._items.update_one({"userId": user_id, "ref": ref}, update)

    async def claim_due_push(self, now: datetime) -> Notification | None:
        """Atomically take one held push whose quiet hours are over (safe with several processes)."""
        doc = await self._items.find_one_and_update(
            {"pushState": PUSH_HELD, "pushAfter": {"$lte": now}},
            {"$set": {"pushState": PUSH_SENDING}}, return_document=ReturnDocument.AFTER)
        return _notification(doc) if doc else None

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
