"""Chat moderation: user blocks (`chat_blocks`) and message reports (`chat_reports`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from handlers.serialize import iso
from stores.mongo import Database, Doc, insert_or_existing, new_id, utcnow


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

    def to_dict(self) -> dict[str, Any]:
        """The report as an admin sees it."""
        return {"id": self.id, "messageId": self.message_id, "conversationId": self.conversation_id,
                "reporterId": self.reporter_id, "reason": self.reason, "status": self.status,
                "createdAt": iso(self.created_at)}


def _report(doc: Doc) -> Report:
    return Report(id=doc["_id"], message_id=doc["messageId"], conversation_id=doc["conversationId"],
                  reporter_id=doc["reporterId"], reason=doc["reason"], status=doc["status"],
                  created_at=doc["createdAt"])


class BlockStore:
    """Who blocked whom."""

    def __init__(self, db: Database) -> None:
        self._blocks = db["chat_blocks"]

    async def ensure_indexes(self) -> None:
        """One block per (blocker, blocked)."""
        await self._blocks.create_index([("blockerId", ASCENDING), ("blockedId", ASCENDING)], unique=True)
        await self._blocks.create_index([("blockedId", ASCENDING), ("blockerId", ASCENDING)])

    async def block(self, blocker_id: str, blocked_id: str) -> None:
        """Record a block (idempotent upsert)."""
        await self._blocks.update_one({"blockerId": blocker_id, "blockedId": blocked_id},
                                      {"$setOnInsert": {"createdAt": utcnow()}}, upsert=True)

    async def unblock(self, blocker_id: str, blocked_id: str) -> None:
        """Remove a block if there is one."""
        await self._blocks.delete_one({"blockerId": blocker_id, "blockedId": blocked_id})

    async def blockers_of(self, blocked_id: str) -> set[str]:
        """Everyone who has blocked `blocked_id`."""
        cursor = self._blocks.find({"blockedId": blocked_id}, {"blockerId": 1, "_id": 0})
        return {doc["blockerId"] async for doc in cursor}

    async def is_blocked(self, blocker_id: str, blocked_id: str) -> bool:
        """Whether `blocker_id` has blocked `blocked_id`."""
        return await self._blocks.find_one({"blockerId": blocker_id, "blockedId": blocked_id}, {"_id": 1}) is not None


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
