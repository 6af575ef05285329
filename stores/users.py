"""The `users` collection: who has connected, with role, name and last activity."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from clock import utcnow
from stores.coalesce import Coalescer
from stores.group_commit import write_error_of
from stores.mongo import Database, Doc

RECORD_INTERVAL_SECONDS = 60.0
RECORDED_MAX = 100_000


@dataclass(frozen=True)
class UserRecord:
    """A known user."""

    id: str
    role: str
    name: str | None
    last_seen_at: datetime | None


def _record(doc: Doc) -> UserRecord:
    return UserRecord(id=doc["_id"], role=doc["role"], name=doc.get("name"), last_seen_at=doc.get("lastSeenAt"))


class UserStore:
    """Named queries on `users`."""

    def __init__(self, db: Database) -> None:
        self._users = db["users"]
        # user id -> (role, name, when this process last recorded them): reconnect storms and the
        # six namespaces of one client cost one write a minute, not one per socket.
        self._recorded: dict[str, tuple[str, str | None, str | None, float]] = {}
        # the connect/disconnect bookkeeping of every socket of a burst goes out as one bulk write
        self._updates: Coalescer[UpdateOne, None] = Coalescer(self._write_updates)

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._users.create_index([("role", ASCENDING), ("_id", ASCENDING)])

    async def upsert_seen(self, user_id: str, role: str, name: str | None, email: str | None = None) -> None:
        """Record a connection: role, name and email from the token, lastSeenAt now (at most once a minute)."""
        recorded = self._recorded.get(user_id)
        moment = time.monotonic()
        if recorded and recorded[:3] == (role, name, email) and moment - recorded[3] < RECORD_INTERVAL_SECONDS:
            return
        now = utcnow()
        update: Doc = {"$set": {"role": role, "lastSeenAt": now}, "$setOnInsert": {"createdAt": now}}
        if name:
            update["$set"]["name"] = name
        if email:
            update["$set"]["tokenEmail"] = email
        if len(self._recorded) >= RECORDED_MAX:
            self._recorded.clear()
        self._recorded[user_id] = (role, name, email, moment)  # before the write: a client's other namespaces skip it
        try:
            await self._updates.submit(UpdateOne({"_id": user_id}, update, upsert=True))
        except BaseException:
            self._recorded.pop(user_id, None)
            raise

    async def email_of(self, user_id: str) -> str | None:
        """Where the user's email notifications go: the address they confirmed (`profile:set-email`), else their
        token's `email` claim; None when neither is known."""
        doc = await self._users.find_one({"_id": user_id}, {"email": 1, "tokenEmail": 1})
        return (doc.get("email") or doc.get("tokenEmail")) if doc else None

    async def confirm_email(self, user_id: str, email: str) -> bool:
        """The user confirmed `email` (the link sent to it): it is where their emails go from now on."""
        result = await self._users.update_one({"_id": user_id}, {"$set": {"email": email}})
        return bool(result.matched_count)

    async def touch(self, user_id: str) -> None:
        """Move lastSeenAt to now."""
        await self._updates.submit(UpdateOne({"_id": user_id}, {"$set": {"lastSeenAt": utcnow()}}))

    async def _write_updates(self, updates: list[UpdateOne]) -> list[BaseException | None]:
        """One unordered bulk write; a failed update is reported to its caller only."""
        try:
            await self._users.bulk_write(updates, ordered=False)
        except BulkWriteError as error:
            failed = {each["index"]: write_error_of(each) for each in error.details.get("writeErrors", [])}
            return [failed.get(index) for index in range(len(updates))]
        return [None] * len(updates)

    async def get(self, user_id: str) -> UserRecord | None:
        """One user by id."""
        doc = await self._users.find_one({"_id": user_id})
        return _record(doc) if doc else None

    async def get_many(self, user_ids: list[str]) -> dict[str, UserRecord]:
        """Several users by id."""
        return {doc["_id"]: _record(doc) async for doc in self._users.find({"_id": {"$in": user_ids}})}

    async def ids_with_role(self, role: str) -> list[str]:
        """Every user id with the given role (index on role, _id; unsorted: sorting 10,000 costs ~40 %)."""
        cursor = self._users.find({"role": role}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]
