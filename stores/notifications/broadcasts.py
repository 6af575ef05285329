"""Admin broadcasts: one body document per broadcast and one tiny receipt per recipient (fan-out on write)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from clock import utcnow
from stores.coalesce import Coalescer
from stores.mongo import Database, Doc, find_in, new_id
from stores.notifications.records import Notification

BATCH = 1000  # receipts per insert_many
LOOKUP = 200  # broadcasts whose receipts one query looks up


def receipt_id(seq: int, user_id: str) -> str:
    """A receipt's _id: the broadcast's seq, then the user (the first ':' separates them)."""
    return f"{seq}:{user_id}"


def _received(body: Doc, user_id: str, receipt: Doc) -> Notification:
    return Notification(id=body["_id"], user_id=user_id, seq=body["seq"], category=body["category"],
                        title=body["title"], body=body["body"], data=body.get("data") or {},
                        critical=bool(body.get("critical")), read_at=receipt.get("readAt"),
                        created_at=body["createdAt"])


async def _chunks(cursor: Any, size: int) -> AsyncIterator[list[Doc]]:
    chunk: list[Doc] = []
    async for doc in cursor:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class BroadcastStore:
    """`notification_broadcasts` (title, body, seq, counts) and `notification_receipts` (`{_id, readAt?}`).

    Receipts have no secondary index on purpose: on SecantusDB the first secondary index of a collection
    costs ~130 us per inserted document (more than the document itself). Every per-user question is
    answered by point lookups of `<seq>:<userId>` for the broadcasts (few) in the asked seq range.
    """

    def __init__(self, db: Database) -> None:
        self._bodies = db["notification_broadcasts"]
        self._receipts = db["notification_receipts"]
        # catch-ups arriving together (a restarted process's clients) read the bodies of their windows at once
        self._windows: Coalescer[tuple[int, int], list[Doc]] = Coalescer(self._read_windows)

    async def ensure_indexes(self) -> None:
        """Bodies by seq; receipts only by _id."""
        await self._bodies.create_index([("seq", ASCENDING)])

    async def create(self, seq: int, user_ids: list[str], fields: Doc, live: int) -> Notification:
        """Write a receipt per user, then the body (so a listed body has all its receipts)."""
        for start in range(0, len(user_ids), BATCH):
            receipts = [{"_id": receipt_id(seq, uid)} for uid in user_ids[start:start + BATCH]]
            await self._receipts.insert_many(receipts, ordered=False)
        body = {"_id": new_id(), "seq": seq, "createdAt": utcnow(), "sent": len(user_ids),
                "deliveredInApp": live, "read": 0, **fields}
        await self._bodies.insert_one(body)
        return _received(body, "", {})

    async def page(self, user_id: str, *, limit: int, seqs: Doc | None, order: int,
                   unread_only: bool = False) -> list[Notification]:
        """The user's broadcasts within `seqs` (a seq condition), in `order`, at most `limit`."""
        found: list[Notification] = []
        async for bodies in self._bodies_in(seqs, order):
            found += await self._received(user_id, bodies, unread_only)
            if len(found) >= limit:
                break
        return found[:limit]

    async def _bodies_in(self, seqs: Doc | None, order: int) -> AsyncIterator[list[Doc]]:
        """The bodies within `seqs` in `order`, LOOKUP at a time. A catch-up's window (after one seq, up to
        another) is read together with the windows of the other catch-ups of its batch."""
        if order == ASCENDING and seqs is not None and seqs.keys() == {"$gt", "$lte"}:
            within = await self._windows.submit((seqs["$gt"], seqs["$lte"]))
            for start in range(0, len(within), LOOKUP):
                yield within[start:start + LOOKUP]
            return
        async for bodies in _chunks(self._bodies.find({"seq": seqs} if seqs else {}).sort("seq", order), LOOKUP):
            yield bodies

    async def _read_windows(self, windows: list[tuple[int, int]]) -> list[list[Doc]]:
        """Bodies with after < seq <= up_to per (after, up_to) window: one index range over all of them."""
        low, high = min(after for after, _ in windows), max(up_to for _, up_to in windows)
        bodies = await self._bodies.find({"seq": {"$gt": low, "$lte": high}}).sort("seq", ASCENDING).to_list()
        return [[body for body in bodies if after < body["seq"] <= up_to] for after, up_to in windows]

    async def _received(self, user_id: str, bodies: list[Doc], unread_only: bool) -> list[Notification]:
        unread: Doc = {"readAt": None} if unread_only else {}
        receipts = {doc["_id"]: doc for doc in await find_in(
            self._receipts, "_id", (receipt_id(body["seq"], user_id) for body in bodies), **unread)}
        return [_received(body, user_id, receipt) for body in bodies
                if (receipt := receipts.get(receipt_id(body["seq"], user_id))) is not None]

    async def _unread_ids(self, user_id: str, refs: list[str] | None = None) -> dict[str, str]:
        """receipt _id -> body _id of the user's unread receipts (of these broadcasts, or all)."""
        query: Doc = {} if refs is None else {"_id": {"$in": refs}}
        bodies = {receipt_id(body["seq"], user_id): body["_id"]
                  async for body in self._bodies.find(query, {"seq": 1})}
        if not bodies:
            return {}
        cursor = self._receipts.find({"_id": {"$in": list(bodies)}, "readAt": None}, {"_id": 1})
        return {doc["_id"]: bodies[doc["_id"]] async for doc in cursor}

    async def unread_counts(self, user_ids: list[str]) -> dict[str, int]:
        """`unread_count` of several users: one read of the broadcasts' seqs, then their receipts by `_id`."""
        counts = dict.fromkeys(user_ids, 0)
        seqs = [body["seq"] async for body in self._bodies.find({}, {"seq": 1, "_id": 0})]
        wanted = [receipt_id(seq, user_id) for seq in seqs for user_id in counts]
        for doc in await find_in(self._receipts, "_id", wanted, {"_id": 1}, readAt=None):
            counts[doc["_id"].partition(":")[2]] += 1  # `<seq>:<userId>`: this receipt is that user's
        return counts

    async def mark_read(self, user_id: str, refs: list[str] | None = None) -> int:
        """Mark the user's receipts of these broadcasts (or all) read; returns how many changed."""
        changed, now = 0, utcnow()
        for rid, ref in (await self._unread_ids(user_id, refs)).items():
            result = await self._receipts.update_one({"_id": rid, "readAt": None}, {"$set": {"readAt": now}})
            if result.modified_count:  # exact under concurrent reads: only the winner counts it
                changed += 1
                await self._bodies.update_one({"_id": ref}, {"$inc": {"read": 1}})
        return changed

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: sent, delivered live in-app, and read, over [since, until)."""
        pipeline: list[Doc] = [
            {"$match": {"createdAt": {"$gte": since, "$lt": until}}},
            {"$group": {"_id": "$category", "sent": {"$sum": "$sent"},
                        "deliveredInApp": {"$sum": "$deliveredInApp"}, "read": {"$sum": "$read"}}},
        ]
        cursor = await self._bodies.aggregate(pipeline)
        return {doc["_id"]: {k: int(v) for k, v in doc.items() if k != "_id"} async for doc in cursor}
