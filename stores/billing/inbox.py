"""`billing_webhook_events`: every verified Stripe event once (keyed by its id) and whether it took effect.

An event is applied by whoever holds its lease: the process that stored it first holds it from the
start, any other takes an expired one with a compare-and-set on `leaseUntil`; a failure puts it back
with a later `nextAt`. Only the id, type, object id and the few fields billing reads are kept,
never the whole object (it may carry personal data); appliers read the object's current state from Stripe.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from stores.group_commit import GroupInsert
from stores.mongo import EPOCH, Database


@dataclass(frozen=True)
class InboxEvent:
    """A stored event: what it is about, and how often applying it was tried."""

    id: str
    type: str
    object_id: str | None
    created: int
    facts: dict[str, Any]
    attempts: int


class WebhookInbox:
    """Named queries on `billing_webhook_events`."""

    def __init__(self, db: Database) -> None:
        self._events = db["billing_webhook_events"]
        self._inserts = GroupInsert(self._events)  # deliveries arriving together: one insert command

    async def ensure_indexes(self) -> None:
        """Unapplied events are found by when they are due."""
        await self._events.create_index([("applied", ASCENDING), ("nextAt", ASCENDING)])

    async def store(self, event: InboxEvent, now: datetime, hold: timedelta) -> bool:
        """Keep a verified event, leased for `hold` to the caller; False when its id was stored before.

        `Backlogged` when the database is far behind (the delivery is refused; Stripe sends it again).
        """
        try:
            await self._inserts.insert({"_id": event.id, "type": event.type, "objectId": event.object_id,
                                        "created": event.created, "facts": event.facts, "attempts": 0,
                                        "applied": False, "receivedAt": now, "nextAt": now,
                                        "leaseUntil": now + hold})
        except DuplicateKeyError:
            return False
        return True

    async def lease(self, event_id: str, now: datetime, hold: timedelta) -> bool:
        """Take an unapplied event for `hold` unless someone else holds it; False when not ours to apply."""
        result = await self._events.update_one(
            {"_id": event_id, "applied": False, "leaseUntil": {"$lte": now}}, {"$set": {"leaseUntil": now + hold}})
        return result.matched_count == 1

    async def applied(self, event_id: str, now: datetime) -> None:
        """The event took effect."""
        await self._events.update_one({"_id": event_id}, {"$set": {"applied": True, "appliedAt": now,
                                                                   "leaseUntil": EPOCH}})

    async def applied_many(self, event_ids: list[str], now: datetime) -> None:
        """Several events took effect: one write for all of them."""
        if event_ids:
            await self._events.update_many({"_id": {"$in": event_ids}},
                                           {"$set": {"applied": True, "appliedAt": now, "leaseUntil": EPOCH}})

    async def release(self, event_ids: list[str]) -> None:
        """Give up the leases of events this process will not apply (it stops): any process may take them."""
        if event_ids:
            await self._events.update_many({"_id": {"$in": event_ids}, "applied": False},
                                           {"$set": {"leaseUntil": EPOCH}})

    async def storing_done(self, within: float) -> bool:
        """Wait up to `within` seconds until no delivery waits for its insert; whether none does now."""
        return await self._inserts.idle(within)

    async def failed(self, event_id: str, next_at: datetime, error: str) -> None:
        """Applying failed: try again from `next_at`."""
        await self._events.update_one({"_id": event_id}, {"$set": {"nextAt": next_at, "leaseUntil": EPOCH,
                                                                   "lastError": error[:200]},
                                                          "$inc": {"attempts": 1}})

    async def due(self, now: datetime, limit: int = 100) -> list[InboxEvent]:
        """Unapplied events due for a (re)try whose lease is free."""
        query = {"applied": False, "nextAt": {"$lte": now}, "leaseUntil": {"$lte": now}}
        cursor = self._events.find(query).limit(limit)
        return [InboxEvent(doc["_id"], doc["type"], doc.get("objectId"), int(doc.get("created") or 0),
                           doc.get("facts") or {}, int(doc.get("attempts") or 0)) async for doc in cursor]
