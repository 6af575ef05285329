"""Chat moderation: user blocks (`chat_blocks`) and message reports (`chat_reports`)."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING

from clock import utcnow
from stores.coalesce import Coalescer
from stores.mongo import Database, Doc, insert_or_existing, new_id

BLOCKS_VERSION = "blocks"  # _id of the counter every block and unblock bumps (chat_versions)
BLOCK_CACHE_USERS = 100_000


@dataclass(frozen=True)
class Report:
    """A member's report of a message, awaiting admin review."""

    id: str
    message_id: str
    conversation_id: str
    reporter_id: str
    reason: str
    status: str
    created_at: datetime



def _report(doc: Doc) -> Report:
    return Report(id=doc["_id"], message_id=doc["messageId"], conversation_id=doc["conversationId"],
                  reporter_id=doc["reporterId"], reason=doc["reason"], status=doc["status"],
                  created_at=doc["createdAt"])


class BlockStore:
    """Who blocked whom, with a per-process cache of who blocked a sender.

    Sending checks blocks on every direct message, and blocks change rarely, so the answer is
    cached. Every block and unblock bumps a version in `chat_versions`; a process drops its cache
    when it sees the version move, checking at most every `recheck` seconds. A block made in this
    process applies at once; one made in another process within `recheck` seconds.
    """

    def __init__(self, db: Database, recheck: float = 1.0) -> None:
        self._blocks = db["chat_blocks"]
        self._versions = db["chat_versions"]
        self._recheck = recheck
        self._blockers: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._estranged: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._version: int | None = None
        self._checked_at = float("-inf")
        self._checking: asyncio.Future[None] | None = None
        self._estranged_reads: Coalescer[str, frozenset[str]] = Coalescer(self._read_estranged)

    async def ensure_indexes(self) -> None:
        """One block per (blocker, blocked)."""
        await self._blocks.create_index([("blockerId", ASCENDING), ("blockedId", ASCENDING)], unique=True)
        await self._blocks.create_index([("blockedId", ASCENDING), ("blockerId", ASCENDING)])

    async def block(self, blocker_id: str, blocked_id: str) -> None:
        """Record a block (idempotent upsert)."""
        await self._blocks.update_one({"blockerId": blocker_id, "blockedId": blocked_id},
                                      {"$setOnInsert": {"createdAt": utcnow()}}, upsert=True)
        await self._changed(blocked_id)

    async def unblock(self, blocker_id: str, blocked_id: str) -> None:
        """Remove a block if there is one."""
        await self._blocks.delete_one({"blockerId": blocker_id, "blockedId": blocked_id})
        await self._changed(blocked_id)

    async def _changed(self, blocked_id: str) -> None:
        await self._versions.update_one({"_id": BLOCKS_VERSION}, {"$inc": {"version": 1}}, upsert=True)
        self._blockers.clear()
        self._estranged.clear()

    async def blockers_of(self, blocked_id: str) -> frozenset[str]:
        """Everyone who has blocked `blocked_id` (cached, see the class)."""
        return await self._cached(self._blockers, blocked_id, {"blockedId": blocked_id})

    async def estranged(self, user_id: str) -> frozenset[str]:
        """Everyone who blocked `user_id` or whom `user_id` blocked: what one does the other never hears of.

        Cached; users not in the cache arriving together (a restarted process's clients rejoining their
        conversations) are read in one query.
        """
        await self._revalidate()
        cached = self._estranged.get(user_id)
        if cached is not None:
            self._estranged.move_to_end(user_id)
            return cached
        return await self._estranged_reads.submit(user_id)

    async def _read_estranged(self, user_ids: list[str]) -> list[frozenset[str]]:
        found = await self.estranged_of(user_ids)
        for user_id in user_ids:
            _remember(self._estranged, user_id, found[user_id])
        return [found[user_id] for user_id in user_ids]

    async def estranged_of(self, user_ids: list[str]) -> dict[str, frozenset[str]]:
        """`estranged` of several users: the cached ones from the cache, the others in one read (not cached)."""
        await self._revalidate()
        cache = self._estranged
        found = {user_id: cache[user_id] for user_id in user_ids if user_id in cache}
        missing = [user_id for user_id in dict.fromkeys(user_ids) if user_id not in found]
        if not missing:
            return found
        others: dict[str, set[str]] = {user_id: set() for user_id in missing}
        query = {"$or": [{"blockedId": {"$in": missing}}, {"blockerId": {"$in": missing}}]}
        async for doc in self._blocks.find(query, {"blockerId": 1, "blockedId": 1, "_id": 0}):
            blocker, blocked = doc["blockerId"], doc["blockedId"]
            if blocker == blocked:
                continue
            if blocker in others:
                others[blocker].add(blocked)
            if blocked in others:
                others[blocked].add(blocker)
        for user_id, estranged in others.items():  # not cached: a presence wave would fill the cache with everyone
            found[user_id] = frozenset(estranged)
        return found

    async def _cached(self, cache: OrderedDict[str, frozenset[str]], user_id: str, query: Doc) -> frozenset[str]:
        await self._revalidate()
        cached = cache.get(user_id)
        if cached is not None:
            cache.move_to_end(user_id)
            return cached
        cursor = self._blocks.find(query, {"blockerId": 1, "blockedId": 1, "_id": 0})
        found = frozenset([other async for doc in cursor for other in (doc["blockerId"], doc["blockedId"])
                           if other != user_id])
        _remember(cache, user_id, found)
        return found

    async def _revalidate(self) -> None:
        if time.monotonic() - self._checked_at < self._recheck:
            return
        if self._checking is None:  # one version read, however many sends are waiting on it
            self._checking = asyncio.ensure_future(self._read_version())
        await asyncio.shield(self._checking)

    async def _read_version(self) -> None:
        try:
            doc = await self._versions.find_one({"_id": BLOCKS_VERSION})
            version = int(doc["version"]) if doc else 0
            if version != self._version:
                self._blockers.clear()
                self._estranged.clear()
                self._version = version
            self._checked_at = time.monotonic()
        finally:
            self._checking = None

    async def is_blocked(self, blocker_id: str, blocked_id: str) -> bool:
        """Whether `blocker_id` has blocked `blocked_id`."""
        return blocker_id in await self.blockers_of(blocked_id)


class ReportStore:
    """Reports of messages, and the admin review list."""

    def __init__(self, db: Database) -> None:
        self._reports = db["chat_reports"]

    async def ensure_indexes(self) -> None:
        """One report per reporter and message; the review list by status, newest first."""
        await self._reports.create_index([("messageId", ASCENDING), ("reporterId", ASCENDING)], unique=True)
        await self._reports.create_index([("status", ASCENDING), ("_id", DESCENDING)])

    async def create(self, message_id: str, conversation_id: str, reporter_id: str,
                     reason: str) -> tuple[Report, bool]:
        """Store a report; a second report of the same message by the same user returns the first."""
        doc = {"_id": new_id(), "messageId": message_id, "conversationId": conversation_id,
               "reporterId": reporter_id, "reason": reason, "status": "open", "createdAt": utcnow()}
        found, created = await insert_or_existing(self._reports, doc,
                                                  {"messageId": message_id, "reporterId": reporter_id})
        return _report(found), created

    async def page(self, status: str, limit: int, before_id: str | None) -> list[Report]:
        """Reports with a status, newest first, before a report id."""
        query: Doc = {"status": status}
        if before_id:
            query["_id"] = {"$lt": before_id}
        cursor = self._reports.find(query).sort("_id", DESCENDING).limit(limit)
        return [_report(doc) async for doc in cursor]

    async def resolve(self, report_id: str, admin_id: str) -> Report | None:
        """Close a report."""
        await self._reports.update_one({"_id": report_id}, {"$set": {"status": "resolved", "resolvedBy": admin_id,
                                                                     "resolvedAt": utcnow()}})
        doc = await self._reports.find_one({"_id": report_id})
        return _report(doc) if doc else None


def _remember(cache: OrderedDict[str, frozenset[str]], user_id: str, found: frozenset[str]) -> None:
    cache[user_id] = found
    while len(cache) > BLOCK_CACHE_USERS:
        cache.popitem(last=False)
