"""The `notifications` collection, broadcasts (stores/notification_broadcasts.py) and the seq counter."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from clock import utcnow
from stores.coalesce import Coalescer
from stores.mongo import Database, Doc, find_in, new_id
from stores.notifications.broadcasts import BroadcastStore
from stores.notifications.records import (
    PUSH_DONE,
    PUSH_HELD,
    PUSH_NONE,
    PUSH_SENDING,
    NewNotification,
    Notification,
    content_doc,
    notification,
)
from stores.notifications.seq import DEFAULT_HOLD, SeqCounter, SeqLease, Settled

__all__ = ["PUSH_DONE", "PUSH_HELD", "PUSH_NONE", "PUSH_SENDING", "NewNotification", "Notification",
           "NotificationStore", "Settled"]
BROADCAST_HOLD_PER_USER = timedelta(milliseconds=1)  # how long a broadcast's seq may stay pending


def _partial(field: str) -> Doc:
    return {"unique": True, "partialFilterExpression": {field: {"$exists": True}}}


class NotificationStore:
    """Named queries on a user's notifications: their own documents plus the broadcasts they received."""

    def __init__(self, db: Database) -> None:
        self._items = db["notifications"]
        self._unread = db["notification_unread"]  # {_id: userId, own: how many own notifications are unread}
        self._held = db["notification_held_pushes"]
        self._broadcasts = BroadcastStore(db)
        self._seqs = SeqCounter(db)
        # unread counts asked together (every socket's count on connect, a storm of them) are one read per batch
        self._unread_reads: Coalescer[str, int] = Coalescer(self._unread_counts)

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        # seq comes from one counter, so (userId, seq) needs no unique check
        await self._items.create_index([("userId", ASCENDING), ("seq", ASCENDING)])
        await self._items.create_index([("unreadBy", ASCENDING)], sparse=True)
        await self._items.create_index([("userId", ASCENDING), ("dedupeKey", ASCENDING)], **_partial("dedupeKey"))
        await self._items.create_index([("userId", ASCENDING), ("collapseKey", ASCENDING)],
                                       **_partial("collapseKey"))
        await self._held.create_index([("pushAfter", ASCENDING)])
        await self._broadcasts.ensure_indexes()
        await self._count_legacy_unread()

    async def _count_legacy_unread(self) -> None:
        """Give unread counters to notifications stored before the counters existed (once: only
        while there are no counters at all)."""
        if await self._unread.find_one({}, {"_id": 1}) is not None:
            return
        if await self._items.find_one({"unreadBy": {"$exists": True}}, {"_id": 1}) is None:
            return
        cursor = await self._items.aggregate([{"$match": {"unreadBy": {"$exists": True}}},
                                              {"$group": {"_id": "$unreadBy", "own": {"$sum": 1}}}])
        counted = [UpdateOne({"_id": doc["_id"]}, {"$max": {"own": doc["own"]}}, upsert=True) async for doc in cursor]
        if counted:
            await self._unread.bulk_write(counted, ordered=False)

    def seq_lease(self) -> SeqLease:
        """A seq for one notification, pending (see `settled`) until the block that writes it ends."""
        return self._seqs.lease()

    async def create(self, user_id: str, seq: int, new: NewNotification) -> Notification | None:
        """Insert one notification (seq from `seq_lease`); None when its dedupeKey or collapseKey already
        exists for the user."""
        ref = new_id()
        doc = {"_id": ref, "ref": ref, "userId": user_id, "seq": seq, "readAt": None, "unreadBy": user_id,
               "createdAt": utcnow(), **content_doc(new)}
        if doc["readAt"] is not None:
            del doc["unreadBy"]
        try:
            await self._items.insert_one(doc)
        except DuplicateKeyError:
            return None
        if "unreadBy" in doc:
            await self._count_unread(user_id, 1)
        return notification(doc)

    async def _count_unread(self, user_id: str, delta: int) -> None:
        """Keep the user's unread counter: +1 per unread notification stored, -1 per one marked read.

        Each notification goes unread -> read once (the update that does it counts it), so the
        `$inc`s commute and the counter stays exact under concurrent creates and reads, on any
        number of processes; counting the unread documents instead costs one index entry per
        unread notification, on every notification.
        """
        try:
            await self._unread.update_one({"_id": user_id}, {"$inc": {"own": delta}}, upsert=True)
        except DuplicateKeyError:  # a concurrent first count created it: now it is an update
            await self._unread.update_one({"_id": user_id}, {"$inc": {"own": delta}})

    async def create_broadcast(self, user_ids: list[str], new: NewNotification, live: int) -> Notification:
        """Persist one broadcast for many users (one `id`, one `seq`); `live` of them have a socket now."""
        hold = max(DEFAULT_HOLD, BROADCAST_HOLD_PER_USER * len(user_ids))
        async with self._seqs.lease(hold) as lease:
            fields = {key: value for key, value in content_doc(new).items() if key not in ("live", "pushState")}
            return await self._broadcasts.create(await lease.seq(), user_ids, fields, live)

    async def settled(self, after_seq: int) -> Settled:
        """Up to which seq a catch-up after `after_seq` is complete (no lower seq is still being written)."""
        return await self._seqs.settled(after_seq)

    async def unread_count(self, user_id: str) -> int:
        """How many of the user's notifications are unread: their counter, plus unread broadcasts."""
        return await self._unread_reads.submit(user_id)

    async def _unread_counts(self, user_ids: list[str]) -> list[int]:
        distinct = list(dict.fromkeys(user_ids))
        counters, broadcasts = await asyncio.gather(find_in(self._unread, "_id", distinct),
                                                    self._broadcasts.unread_counts(distinct))
        own = {doc["_id"]: max(0, int(doc.get("own", 0))) for doc in counters}
        return [own.get(user_id, 0) + broadcasts[user_id] for user_id in user_ids]

    async def page(self, user_id: str, *, limit: int, before_seq: int | None = None,
                   after_seq: int | None = None, up_to_seq: int | None = None,
                   unread_only: bool = False) -> list[Notification]:
        """Newest first below `before_seq`, or oldest first above `after_seq` (catch-up, up to `up_to_seq`)."""
        seqs: Doc = {}
        if after_seq is not None:
            seqs["$gt"] = after_seq
            if up_to_seq is not None:
                seqs["$lte"] = up_to_seq
        elif before_seq is not None:
            seqs["$lt"] = before_seq
        order = ASCENDING if after_seq is not None else DESCENDING
        query: Doc = {"unreadBy": user_id} if unread_only else {"userId": user_id}
        if seqs:
            query["seq"] = seqs
        own, broadcasts = await asyncio.gather(
            self._items.find(query).sort("seq", order).limit(limit).to_list(),
            self._broadcasts.page(user_id, limit=limit, seqs=seqs, order=order, unread_only=unread_only))
        merged = [notification(doc) for doc in own] + broadcasts
        return sorted(merged, key=lambda item: item.seq, reverse=order == DESCENDING)[:limit]

    async def mark_read(self, user_id: str, refs: list[str] | None = None) -> int:
        """Mark these (or all) of the user's unread notifications read, broadcasts included; returns count."""
        query: Doc = {"unreadBy": user_id}
        if refs is not None:
            query["ref"] = {"$in": refs}
        own, broadcasts = await asyncio.gather(self._mark_read(query),
                                               self._broadcasts.mark_read(user_id, refs))
        return own + broadcasts

    async def mark_collapsed_read(self, user_id: str, collapse_key: str, up_to_seq: int | None = None) -> int:
        """Mark the user's unread notification with this collapse key read (if its `data.seq` <= `up_to_seq`)."""
        query: Doc = {"unreadBy": user_id, "collapseKey": collapse_key}
        if up_to_seq is not None:
            query["data.seq"] = {"$lte": up_to_seq}
        return await self._mark_read(query)

    async def _mark_read(self, query: Doc) -> int:
        result = await self._items.update_many(query, {"$set": {"readAt": utcnow()},
                                                       "$unset": {"collapseKey": "", "unreadBy": ""}})
        if result.modified_count:
            await self._count_unread(query["unreadBy"], -result.modified_count)
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
        """Take one held push whose quiet hours are over (safe with several processes: the delete decides).

        No find_one_and_*: SecantusDB's findAndModify scans the whole collection in its write phase.
        """
        while (held := await self._held.find_one({"pushAfter": {"$lte": now}}, {"_id": 1})) is not None:
            if not (await self._held.delete_one({"_id": held["_id"]})).deleted_count:
                continue  # another process claimed it first
            result = await self._items.update_one({"_id": held["_id"]}, {"$set": {"pushState": PUSH_SENDING}})
            doc = await self._items.find_one({"_id": held["_id"]}) if result.matched_count else None
            if doc is not None:
                return notification(doc)
        return None

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: created, delivered live in-app, and read, over [since, until)."""
        pipeline: list[Doc] = [
            {"$match": {"createdAt": {"$gte": since, "$lt": until}}},
            {"$group": {"_id": "$category", "sent": {"$sum": 1},
                        "deliveredInApp": {"$sum": {"$cond": [{"$eq": ["$live", True]}, 1, 0]}},
                        "read": {"$sum": {"$cond": [{"$ifNull": ["$readAt", False]}, 1, 0]}}}},
        ]
        own, broadcasts = await asyncio.gather(self._aggregate(pipeline), self._broadcasts.stats(since, until))
        for category, counts in broadcasts.items():
            mine = own.setdefault(category, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                mine[key] += value
        return own

    async def _aggregate(self, pipeline: list[Doc]) -> dict[str, dict[str, int]]:
        cursor = await self._items.aggregate(pipeline)
        return {doc["_id"]: {k: int(v) for k, v in doc.items() if k != "_id"} async for doc in cursor}
