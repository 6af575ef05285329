"""The `users` collection: who has connected, with role, name and last activity."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from clock import utcnow
from stores.coalesce import Coalescer
from stores.group_commit import DUPLICATE_KEY_CODES, write_error_of
from stores.mongo import Database, Doc, find_in

RECORD_INTERVAL_SECONDS = 60.0
RECORDED_MAX = 100_000
TOUCH_CHUNK = 100  # users whose lastSeenAt one write records
TOUCH_PAUSE = 0.1  # seconds between two such writes while more are pending
log = logging.getLogger("careline.users")


@dataclass(frozen=True)
class UserRecord:
    """A known user."""

    id: str
    role: str
    name: str | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Seen:
    """A connection's user as its token describes them."""

    user_id: str
    role: str
    name: str | None
    email: str | None

    def new_doc(self, now: datetime) -> Doc:
        """The document of a user seen for the first time."""
        doc: Doc = {"_id": self.user_id, "role": self.role, "createdAt": now, "lastSeenAt": now}
        if self.name:
            doc["name"] = self.name
        if self.email:
            doc["tokenEmail"] = self.email
        return doc

    def changes(self, stored: Doc) -> Doc:
        """What of a stored user's document this token changes (an empty name or email changes nothing)."""
        wanted: Doc = {"role": self.role, "name": self.name or stored.get("name"),
                       "tokenEmail": self.email or stored.get("tokenEmail")}
        return {key: value for key, value in wanted.items() if value is not None and stored.get(key) != value}


def _record(doc: Doc) -> UserRecord:
    return UserRecord(id=doc["_id"], role=doc["role"], name=doc.get("name"), last_seen_at=doc.get("lastSeenAt"))


class UserStore:
    """Named queries on `users`."""

    def __init__(self, db: Database) -> None:
        self._users = db["users"]
        # user id -> (role, name, email, when this process last recorded them): reconnect storms and the
        # six namespaces of one client cost one write a minute at most, not one per socket
        self._recorded: dict[str, tuple[str, str | None, str | None, float]] = {}
        self._pruned_at = time.monotonic()
        # the connect (and disconnect) bookkeeping of every socket of a burst goes out per batch
        self._seen: Coalescer[Seen, None] = Coalescer(self._record_seen)
        # lastSeenAt of users who went offline, written behind (see `touch`)
        self._touched: dict[str, datetime] = {}
        self._toucher: asyncio.Task[None] | None = None

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries below rely on."""
        await self._users.create_index([("role", ASCENDING), ("_id", ASCENDING)])

    async def upsert_seen(self, user_id: str, role: str, name: str | None, email: str | None = None) -> None:
        """Record a connection: a new user with role, name and email from the token (createdAt and lastSeenAt
        now); a known one's role, name and email where the token changed them (lastSeenAt moves on disconnect)."""
        recorded = self._recorded.get(user_id)
        moment = time.monotonic()
        if recorded and recorded[:3] == (role, name, email) and moment - recorded[3] < RECORD_INTERVAL_SECONDS:
            return
        self._forget_stale(moment)
        self._recorded[user_id] = (role, name, email, moment)  # before the write: a client's other namespaces skip it
        try:
            await self._seen.submit(Seen(user_id, role, name, email))
        except BaseException:
            self._recorded.pop(user_id, None)
            raise

    def _forget_stale(self, moment: float) -> None:
        """Drop what was recorded longer than RECORD_INTERVAL_SECONDS ago (it no longer spares a write)."""
        if moment - self._pruned_at < RECORD_INTERVAL_SECONDS and len(self._recorded) < RECORDED_MAX:
            return
        self._pruned_at = moment
        self._recorded = {user_id: entry for user_id, entry in self._recorded.items()
                          if moment - entry[3] < RECORD_INTERVAL_SECONDS}
        if len(self._recorded) >= RECORDED_MAX:
            self._recorded.clear()

    async def _record_seen(self, batch: list[Seen]) -> list[BaseException | None]:
        """One insert of the batch's users (the cheap write on SecantusDB: an upsert costs ~4x), then, for those
        already stored, one read and an update of only what their token changed."""
        latest = {seen.user_id: seen for seen in batch}
        now = utcnow()
        try:
            await self._users.insert_many([seen.new_doc(now) for seen in latest.values()], ordered=False)
        except BulkWriteError as error:
            failures = error.details.get("writeErrors", [])
            others = [each for each in failures if each.get("code") not in DUPLICATE_KEY_CODES]
            if others:
                raise write_error_of(others[0]) from None
            await self._update_known([latest[each["op"]["_id"]] for each in failures])
        return [None] * len(batch)

    async def _update_known(self, known: list[Seen]) -> None:
        """Set the role, name and email of stored users whose token says otherwise."""
        if not known:
            return
        stored = {doc["_id"]: doc for doc in await find_in(self._users, "_id", (seen.user_id for seen in known),
                                                          {"role": 1, "name": 1, "tokenEmail": 1})}
        updates = [UpdateOne({"_id": seen.user_id}, {"$set": changes}) for seen in known
                   if (changes := seen.changes(stored.get(seen.user_id, {})))]
        if updates:
            await self._users.bulk_write(updates, ordered=False)

    async def email_of(self, user_id: str) -> str | None:
        """Where the user's email notifications go: the address they confirmed (`profile:set-email`), else their
        token's `email` claim; None when neither is known."""
        doc = await self._users.find_one({"_id": user_id}, {"email": 1, "tokenEmail": 1})
        return (doc.get("email") or doc.get("tokenEmail")) if doc else None

    async def emails_of(self, user_ids: list[str]) -> dict[str, str]:
        """`email_of` for several users at once (users without an address are left out)."""
        found = {doc["_id"]: doc.get("email") or doc.get("tokenEmail")
                 for doc in await find_in(self._users, "_id", user_ids, {"email": 1, "tokenEmail": 1})}
        return {user_id: address for user_id, address in found.items() if address}

    async def confirm_email(self, user_id: str, email: str) -> bool:
        """The user confirmed `email` (the link sent to it): it is where their emails go from now on."""
        result = await self._users.update_one({"_id": user_id}, {"$set": {"email": email}})
        return bool(result.matched_count)

    async def touch(self, user_id: str) -> None:
        """Move lastSeenAt to now, written behind: at most TOUCH_CHUNK users per write, TOUCH_PAUSE s apart.

        A disconnect wave then neither waits for nor floods the database (an update costs SecantusDB ~0.5 ms):
        10,000 users going offline at once are written over ~10 s. Nothing reads lastSeenAt back on the way
        (presence events carry their own time); what is still pending when the process dies is lost.
        """
        self._touched[user_id] = utcnow()
        if self._toucher is None:
            self._toucher = asyncio.create_task(self._write_touched())

    async def flush_touched(self) -> None:
        """Wait until every lastSeenAt recorded so far is written (shutdown, tests)."""
        while self._toucher is not None:
            await asyncio.shield(self._toucher)

    async def _write_touched(self) -> None:
        try:
            while self._touched:
                chunk = dict(itertools.islice(self._touched.items(), TOUCH_CHUNK))
                for user_id in chunk:
                    del self._touched[user_id]
                try:
                    await self._users.bulk_write([UpdateOne({"_id": user_id}, {"$set": {"lastSeenAt": moment}})
                                                  for user_id, moment in chunk.items()], ordered=False)
                except PyMongoError as error:
                    log.warning("could not record lastSeenAt of %d users: %s", len(chunk), type(error).__name__)
                if self._touched:
                    await asyncio.sleep(TOUCH_PAUSE)
        finally:
            self._toucher = None

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
