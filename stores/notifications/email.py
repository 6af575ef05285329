"""The email queue: `email_outbox` (one item per notification to email: queued, sending, sent, failed or
dropped) and `email_state` (when each user was last emailed about each category, for digests).

An item is keyed by its notification id, so enqueueing twice is one item, and carries its user's `slot` (one
of SLOTS): a sender lists the due items of one slot at a time (an index range, however long the queue), and
claims every due item of a batch of users at once with a lease (`update_many` whose filter is the
compare-and-set on the item's state), so two processes never send the same item; a lease that runs out (its
process died) puts the items back in the queue. Each outcome is then written for the claimed items by `_id`
and lease token.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from stores.mongo import Database, Doc, due_by, new_id

QUEUED, SENDING, SENT, FAILED, DROPPED = "queued", "sending", "sent", "failed", "dropped"
OUTBOX = "email_outbox"
SLOTS = 64  # the outbox is split by user into this many slots, each listed on its own (`slot_of`)
Group = tuple[str, str]  # (user id, category): the items one email combines


def slot_of(user_id: str) -> int:
    """The user's slot: every item of one user (so every digest group) is in one slot."""
    return zlib.crc32(user_id.encode()) % SLOTS


def every_slot() -> list[int | None]:
    """Every slot in a random order (None: items queued before slots existed); workers walking the slots
    start apart and rarely list or claim the same slot at once."""
    slots: list[int | None] = [None, *range(SLOTS)]
    random.shuffle(slots)
    return slots


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

    @property
    def group(self) -> Group:
        """The (user, category) whose email this item goes in."""
        return self.user_id, self.category


@dataclass(frozen=True)
class Claim:
    """Items this sender holds under one lease token."""

    token: str
    items: list[EmailItem]


def _item(doc: Doc) -> EmailItem:
    return EmailItem(doc["_id"], doc["userId"], doc["category"], doc["critical"], doc["title"], doc["body"],
                     doc.get("tries", 0), doc["createdAt"])


def _state_id(group: Group) -> str:
    return f"{group[0]}|{group[1]}"


class EmailQueue:
    """Named queries on the email outbox and the digest state."""

    def __init__(self, db: Database) -> None:
        self._outbox = db[OUTBOX]
        self._state = db["email_state"]

    async def ensure_indexes(self) -> None:
        """Due items by state and time, and by slot; the items of one user and category. (Claimed items are
        read back by user and lease token: no index of their own, one less index entry to write per claim.)"""
        await self._outbox.create_index([("state", ASCENDING), ("dueAt", ASCENDING)])
        await self._outbox.create_index([("state", ASCENDING), ("slot", ASCENDING), ("dueAt", ASCENDING)])
        await self._outbox.create_index([("userId", ASCENDING), ("category", ASCENDING), ("state", ASCENDING)])

    async def enqueue(self, notification_id: str, user_id: str, category: str, critical: bool, title: str,
                      body: str, due_at: datetime, now: datetime) -> None:
        """Queue one notification (again: nothing)."""
        try:
            await self._outbox.insert_one({"_id": notification_id, "userId": user_id, "category": category,
                                           "critical": critical, "title": title, "body": body, "state": QUEUED,
                                           "slot": slot_of(user_id), "dueAt": due_at, "tries": 0, "createdAt": now})
        except DuplicateKeyError:
            return

    async def anything_due(self, now: datetime) -> bool:
        """Whether any item is due now."""
        return await self._outbox.find_one({"state": QUEUED, "dueAt": due_by(now)}, {"_id": 1}) is not None

    async def due_groups(self, slot: int | None, now: datetime) -> list[Group]:
        """(user, category) pairs of one slot with an item due now (the `(state, slot, dueAt)` range)."""
        cursor = self._outbox.find({"state": QUEUED, "slot": slot, "dueAt": due_by(now)}, {"userId": 1, "category": 1})
        return list(dict.fromkeys([(doc["userId"], doc["category"]) async for doc in cursor]))

    async def last_sent(self, groups: list[Group]) -> dict[Group, datetime]:
        """When each of these users was last emailed about the category (absent: never)."""
        keys = {_state_id(group): group for group in groups}
        cursor = self._state.find({"_id": {"$in": list(keys)}})
        return {keys[doc["_id"]]: doc["lastSentAt"] async for doc in cursor}

    async def claim(self, user_ids: list[str], now: datetime, lease: timedelta) -> Claim:
        """Take every due item of these users for this sender (items another sender took stay theirs)."""
        token = new_id()
        await self._outbox.update_many(
            {"userId": {"$in": user_ids}, "state": QUEUED, "dueAt": due_by(now)},
            {"$set": {"state": SENDING, "leaseToken": token, "leaseUntil": now + lease}})
        items = [_item(doc) async for doc in self._outbox.find({"userId": {"$in": user_ids}, "leaseToken": token})]
        return Claim(token, sorted(items, key=lambda item: item.created_at))

    async def sent(self, claim: Claim, ids: list[str], groups: list[Group], known: set[Group], now: datetime) -> None:
        """These claimed items went out (one email per group): the groups' digest windows start now (`known`:
        the groups emailed before, whose state is updated; the others' is inserted)."""
        await self._finish(claim, ids, {"$set": {"state": SENT, "sentAt": now}, "$unset": {"leaseUntil": ""}})
        again = [_state_id(group) for group in groups if group in known]
        first = [_state_id(group) for group in groups if group not in known]
        if first:
            try:
                await self._state.insert_many([{"_id": key, "lastSentAt": now} for key in first], ordered=False)
            except BulkWriteError:  # another worker emailed one of them meanwhile
                again += first
        if again:
            await self._state.update_many({"_id": {"$in": again}}, {"$set": {"lastSentAt": now}})

    async def retry(self, claim: Claim, ids: list[str], due_at: datetime, reason: str) -> None:
        """The SMTP server refused for now: back in the queue at `due_at`, one try more."""
        await self._finish(claim, ids, {"$set": {"state": QUEUED, "dueAt": due_at, "lastError": reason},
                                        "$inc": {"tries": 1}, "$unset": {"leaseToken": "", "leaseUntil": ""}})

    async def retry_later(self, claim: Claim, ids: list[str], due_at: datetime) -> None:
        """Not yet (a digest window is open): back in the queue until `due_at`, no try spent."""
        await self._finish(claim, ids, {"$set": {"state": QUEUED, "dueAt": due_at},
                                        "$unset": {"leaseToken": "", "leaseUntil": ""}})

    async def give_up(self, claim: Claim, ids: list[str], state: str, reason: str, now: datetime) -> None:
        """Never to be sent (`failed` after the last try, `dropped` without an address), with why."""
        await self._finish(claim, ids, {"$set": {"state": state, "lastError": reason, "endedAt": now},
                                        "$inc": {"tries": 1 if state == FAILED else 0},
                                        "$unset": {"leaseUntil": ""}})

    async def _finish(self, claim: Claim, ids: list[str], update: Doc) -> None:
        if ids:  # `_id` first: point lookups (docs/storage.md)
            await self._outbox.update_many({"_id": {"$in": ids}, "leaseToken": claim.token, "state": SENDING},
                                           update)

    async def release_expired(self, now: datetime) -> int:
        """Items whose sender died mid-send go back to the queue (they may be sent twice: at least once)."""
        result = await self._outbox.update_many({"state": SENDING, "leaseUntil": {"$lt": now}},
                                                {"$set": {"state": QUEUED}, "$unset": {"leaseToken": ""}})
        return int(result.modified_count)
