"""Web Push: `push_subscriptions` (browser PushSubscriptions) and `push_deliveries` (every attempt)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from clock import utcnow
from errors import Conflict
from stores.mongo import Database, Doc, new_id

SENT, FAILED, GONE, PENDING, RETRYING = "sent", "failed", "gone", "pending", "retrying"


@dataclass(frozen=True)
class PushSubscription:
    """One browser's push endpoint and keys."""

    id: str
    user_id: str
    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        """The `subscription_info` pywebpush wants."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def _subscription(doc: Doc) -> PushSubscription:
    return PushSubscription(id=doc["_id"], user_id=doc["userId"], endpoint=doc["endpoint"], p256dh=doc["p256dh"],
                            auth=doc["auth"])


class PushStore:
    """Named queries on push subscriptions and delivery records."""

    def __init__(self, db: Database) -> None:
        self._subs = db["push_subscriptions"]
        self._deliveries = db["push_deliveries"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._subs.create_index([("endpoint", ASCENDING)], unique=True)
        await self._subs.create_index([("userId", ASCENDING), ("createdAt", DESCENDING)])
        await self._deliveries.create_index([("createdAt", ASCENDING), ("category", ASCENDING)])
        await self._deliveries.create_index([("notificationId", ASCENDING)])

    async def save(self, user_id: str, endpoint: str, p256dh: str, auth: str, expiration_time: int | None,
                   keep: int) -> str:
        """Store the subscription of `endpoint` for the user; keep the user's newest `keep`.

        An endpoint another user holds moves to this user only with the same keys (the same browser
        re-subscribing after a login change); otherwise `Conflict`: knowing someone's endpoint is not
        enough to take their pushes.
        """
        now = utcnow()
        update = {"$set": {"userId": user_id, "p256dh": p256dh, "auth": auth, "expirationTime": expiration_time,
                           "createdAt": now},
                  "$setOnInsert": {"_id": new_id()}}
        mine_or_same_browser = {"endpoint": endpoint,
                                "$or": [{"userId": user_id}, {"p256dh": p256dh, "auth": auth}]}
        for _ in range(3):  # two first-time upserts of one endpoint can race; the loser updates
            try:
                await self._subs.update_one(mine_or_same_browser, update, upsert=True)
                break
            except DuplicateKeyError:
                held = await self._subs.find_one({"endpoint": endpoint}, {"userId": 1, "p256dh": 1, "auth": 1})
                if held is not None and held["userId"] != user_id and (held["p256dh"], held["auth"]) != (p256dh, auth):
                    raise Conflict("This push endpoint belongs to another subscription") from None
        doc = await self._subs.find_one({"endpoint": endpoint}, {"_id": 1})
        stale = self._subs.find({"userId": user_id}, {"_id": 1}).sort([("createdAt", DESCENDING), ("_id", DESCENDING)])
        stale = stale.skip(keep)
        old = [each["_id"] async for each in stale]
        if old:
            await self._subs.delete_many({"_id": {"$in": old}})
        return str(doc["_id"]) if doc else ""

    async def for_user(self, user_id: str) -> list[PushSubscription]:
        """Every subscription of the user."""
        return [_subscription(doc) async for doc in self._subs.find({"userId": user_id})]

    async def remove(self, subscription_id: str) -> None:
        """Forget a subscription (the push service said it is gone)."""
        await self._subs.delete_one({"_id": subscription_id})

    async def remove_endpoint(self, user_id: str, endpoint: str) -> bool:
        """Forget the user's subscription of `endpoint`; False when the user has none there."""
        return (await self._subs.delete_one({"userId": user_id, "endpoint": endpoint})).deleted_count > 0

    async def start_delivery(self, notification_id: str, user_id: str, subscription_id: str, category: str) -> str:
        """Open the delivery record of one push to one subscription."""
        now = utcnow()
        doc = {"_id": new_id(), "notificationId": notification_id, "userId": user_id,
               "subscriptionId": subscription_id, "category": category, "status": PENDING, "attempts": 0,
               "lastStatus": None, "lastError": None, "history": [], "createdAt": now, "updatedAt": now}
        await self._deliveries.insert_one(doc)
        return str(doc["_id"])

    async def record_attempt(self, delivery_id: str, status: int | None, error: str | None, outcome: str) -> None:
        """Count one attempt with its HTTP status (None: no answer) and where the delivery now stands."""
        now = utcnow()
        await self._deliveries.update_one({"_id": delivery_id}, {
            "$inc": {"attempts": 1},
            "$set": {"status": outcome, "lastStatus": status, "lastError": error, "updatedAt": now},
            "$push": {"history": {"at": now, "status": status, "error": error}}})

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: deliveries that reached the push service, and those that failed for good."""
        pipeline: list[Doc] = [
            {"$match": {"createdAt": {"$gte": since, "$lt": until}}},
            {"$group": {"_id": "$category",
                        "pushed": {"$sum": {"$cond": [{"$eq": ["$status", SENT]}, 1, 0]}},
                        "failed": {"$sum": {"$cond": [{"$in": ["$status", [FAILED, GONE]]}, 1, 0]}}}},
        ]
        cursor = await self._deliveries.aggregate(pipeline)
        return {doc["_id"]: {"pushed": int(doc["pushed"]), "failed": int(doc["failed"])} async for doc in cursor}
