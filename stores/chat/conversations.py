"""Chat conversations (`chat_conversations`) and per-member receipt markers (`chat_markers`)."""
from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from clock import utcnow
from stores.chat.activity import Activity, decode_sent
from stores.coalesce import Coalescer
from stores.mongo import Database, Doc, find_in, insert_or_existing, new_id

MEMBERSHIP_CACHE = 50_000  # conversations whose (immutable) membership one process remembers
CONTACTS_SCAN = 2000  # conversations looked at when finding who shares one with a user
MEMBER_IDS_SCAN = 5000  # conversations of one user considered by search


@dataclass(frozen=True)
class Conversation:
    """One conversation."""

    id: str
    kind: str
    member_ids: tuple[str, ...]
    title: str | None
    created_by: str
    created_at: datetime
    last_activity_at: datetime
    last_seq: int
    sent_seqs: dict[str, int] = field(default_factory=dict, compare=False)
    engaged_ids: tuple[str, ...] | None = None  # direct: who opened, joined or wrote in it (None: stored before)

    @property
    def direct(self) -> bool:
        """True for two-member conversations (blocks apply to these)."""
        return self.kind != "group"

    def shows_presence_of(self, member_id: str) -> bool:
        """A direct conversation shows a member's presence once they opened, joined or wrote in it."""
        return not self.direct or self.engaged_ids is None or member_id in self.engaged_ids

    def with_activity(self, activity: Activity | None) -> Conversation:
        """This conversation with activity known in this process but maybe not yet stored."""
        if activity is None or activity.last_at is None:
            return self
        sent = dict(self.sent_seqs)
        for member, seq in activity.sent.items():
            sent[member] = max(sent.get(member, 0), seq)
        return replace(self, last_seq=max(self.last_seq, activity.last_seq),
                       last_activity_at=max(self.last_activity_at, activity.last_at), sent_seqs=sent)

    def read_seq_of(self, user_id: str, markers: Markers) -> int:
        """How far the user has read: their read marker, or their own last message if later."""
        return max(markers.read_seq, self.sent_seqs.get(user_id, 0))



@dataclass(frozen=True)
class Membership:
    """Who belongs to a conversation and its kind: fixed at creation, so safe to cache."""

    kind: str
    member_ids: frozenset[str]

    @property
    def direct(self) -> bool:
        """True for two-member conversations (blocks apply to these)."""
        return self.kind != "group"


@dataclass(frozen=True)
class Markers:
    """How far one member has received and read a conversation."""

    delivered_seq: int = 0
    read_seq: int = 0


def _conversation(doc: Doc, activity: Doc | None) -> Conversation:
    """A stored conversation with its stored activity (`chat_activity`, absent until the first message)."""
    activity = activity or {}
    return Conversation(id=doc["_id"], kind=doc["kind"], member_ids=tuple(doc["memberIds"]), title=doc.get("title"),
                        created_by=doc["createdBy"], created_at=doc["createdAt"],
                        last_activity_at=max(doc["createdAt"], activity.get("lastActivityAt") or doc["createdAt"]),
                        last_seq=int(activity.get("lastSeq", 0)), sent_seqs=decode_sent(activity),
                        engaged_ids=tuple(doc["engagedIds"]) if "engagedIds" in doc else None)


def _markers(doc: Doc | None) -> Markers:
    return Markers(doc.get("deliveredSeq", 0), doc.get("readSeq", 0)) if doc else Markers()


def pair_key(a: str, b: str) -> str:
    """The unique key of the direct conversation between two users (order-independent, unambiguous)."""
    return json.dumps(sorted((a, b)))


def _new_doc(kind: str, member_ids: list[str], title: str | None, created_by: str) -> Doc:
    now = utcnow()
    return {"_id": new_id(), "kind": kind, "memberIds": member_ids, "title": title, "createdBy": created_by,
            "createdAt": now, "engagedIds": [created_by]}


class ConversationStore:
    """Named queries on conversations, their activity, and read/delivered markers.

    A conversation's activity (last seq, last activity, each member's last sent seq) lives in
    `chat_activity`, a collection with no secondary index: it changes with every burst of
    messages, and on SecantusDB an update costs about 2.5 times as much on `chat_conversations`
    with its indexes (docs/performance.md).
    """

    def __init__(self, db: Database) -> None:
        self._conversations = db["chat_conversations"]
        self._activity = db["chat_activity"]
        self._markers = db["chat_markers"]
        self._memberships: OrderedDict[str, Membership] = OrderedDict()
        self._engaged: OrderedDict[tuple[str, str], None] = OrderedDict()  # known engaged, so sends skip the write
        # (conversation id, member id) reads arriving together, e.g. a restarted process's clients rejoining
        self._member_reads: Coalescer[tuple[str, str], Conversation | None] = Coalescer(self._read_for_members)

    @property
    def activity_collection(self) -> Any:
        """`chat_activity` (the activity writer updates it)."""
        return self._activity

    async def _with_activity(self, doc: Doc | None) -> Conversation | None:
        return None if doc is None else await self._stored(doc)

    async def _stored(self, doc: Doc) -> Conversation:
        return _conversation(doc, await self._activity.find_one({"_id": doc["_id"]}))

    async def ensure_indexes(self) -> None:
        """One unique key per pair or group request; conversations by member; one marker per member."""
        await self._conversations.create_index("key", unique=True)
        await self._conversations.create_index("memberIds")
        await self._markers.create_index([("conversationId", ASCENDING), ("userId", ASCENDING)], unique=True)

    async def open_direct(self, kind: str, a: str, b: str, title: str | None) -> tuple[Conversation, bool]:
        """The direct conversation of a pair, created on first use (the unique pair key settles races)."""
        key = "pair:" + pair_key(a, b)
        found = await self._with_activity(await self._conversations.find_one({"key": key}))
        if found is not None:
            return found, False
        doc = _new_doc(kind, [a, b], title, a)
        doc["key"] = key
        stored, created = await insert_or_existing(self._conversations, doc, {"key": key})
        return await self._stored(stored), created

    async def engage(self, conversation_id: str, user_id: str) -> bool:
        """Record that the member opened, joined or wrote in the conversation; True the first time."""
        key = (conversation_id, user_id)
        if key in self._engaged:
            return False
        result = await self._conversations.update_one({"_id": conversation_id, "engagedIds": {"$ne": user_id}},
                                                      {"$addToSet": {"engagedIds": user_id}})
        self._engaged[key] = None
        if len(self._engaged) > MEMBERSHIP_CACHE:
            self._engaged.popitem(last=False)
        return bool(result.modified_count)

    async def create_group(self, member_ids: list[str], title: str | None, created_by: str,
                           request_id: str | None) -> tuple[Conversation, bool]:
        """A new group; a repeated `request_id` of the same creator returns the first one."""
        doc = _new_doc("group", member_ids, title, created_by)
        doc["key"] = f"group:{created_by}\n{request_id}" if request_id else "group-id:" + doc["_id"]
        found, created = await insert_or_existing(self._conversations, doc, {"key": doc["key"]})
        return await self._stored(found), created

    async def get_for_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        """One conversation, only if `user_id` is a member.

        Reads arriving together are one query of the conversations and one of their activity (a reconnect
        storm's joins and catch-ups: thousands at once, a few members of each conversation among them).
        """
        return await self._member_reads.submit((conversation_id, user_id))

    async def _read_for_members(self, wanted: list[tuple[str, str]]) -> list[Conversation | None]:
        docs = {doc["_id"]: doc for doc in await find_in(self._conversations, "_id", (cid for cid, _ in wanted))}
        activity = {doc["_id"]: doc for doc in await find_in(self._activity, "_id", docs)}
        return [_conversation(docs[conversation_id], activity.get(conversation_id))
                if conversation_id in docs and user_id in docs[conversation_id]["memberIds"] else None
                for conversation_id, user_id in wanted]

    async def membership(self, conversation_id: str) -> Membership | None:
        """Kind and members of a conversation; cached, since no request changes them after creation."""
        cached = self._memberships.get(conversation_id)
        if cached is not None:
            self._memberships.move_to_end(conversation_id)
            return cached
        doc = await self._conversations.find_one({"_id": conversation_id}, {"kind": 1, "memberIds": 1})
        if doc is None:
            return None
        membership = Membership(doc["kind"], frozenset(doc["memberIds"]))
        self._memberships[conversation_id] = membership
        if len(self._memberships) > MEMBERSHIP_CACHE:
            self._memberships.popitem(last=False)
        return membership

    async def member_of_any(self, user_id: str, conversation_ids: list[str]) -> bool:
        """Whether `user_id` belongs to at least one of the conversations (by _id, then membership)."""
        if not conversation_ids:
            return False
        doc = await self._conversations.find_one({"_id": {"$in": conversation_ids}, "memberIds": user_id},
                                                 {"_id": 1})
        return doc is not None

    async def ids_for_member(self, user_id: str) -> list[str]:
        """Ids of the user's conversations (at most MEMBER_IDS_SCAN)."""
        cursor = self._conversations.find({"memberIds": user_id}, {"_id": 1}).limit(MEMBER_IDS_SCAN)
        return [doc["_id"] async for doc in cursor]

    async def contacts(self, user_id: str) -> set[str]:
        """Everyone who sees the user's presence: the members of their groups, and of their direct conversations
        they have opened, joined or written in (not the user)."""
        query = {"memberIds": user_id, "$or": [{"kind": "group"}, {"engagedIds": user_id},
                                                {"engagedIds": {"$exists": False}}]}
        cursor = self._conversations.find(query, {"memberIds": 1}).limit(CONTACTS_SCAN)
        found = {member async for doc in cursor for member in doc["memberIds"]}
        found.discard(user_id)
        return found

    async def contacts_of(self, user_ids: list[str]) -> dict[str, set[str]]:
        """`contacts` of several users, one read per IN_CHUNK of them sent together (a connect storm announces
        presence per batch)."""
        wanted = set(user_ids)
        docs = await find_in(self._conversations, "memberIds", wanted, {"memberIds": 1, "kind": 1, "engagedIds": 1},
                             per_value_limit=CONTACTS_SCAN)
        found: dict[str, set[str]] = {user_id: set() for user_id in wanted}
        for doc in docs:
            members, engaged = doc["memberIds"], doc.get("engagedIds")
            for user_id in wanted.intersection(members):
                if doc.get("kind") == "group" or engaged is None or user_id in engaged:
                    found[user_id].update(members)
        for user_id, contacts in found.items():
            contacts.discard(user_id)
        return found

    async def related(self, user_id: str, candidates: frozenset[str]) -> set[str]:
        """Which of `candidates` share a conversation with the user (a `Relations` source)."""
        cursor = self._conversations.find({"memberIds": user_id}, {"memberIds": 1}).limit(CONTACTS_SCAN)
        return {member async for doc in cursor for member in doc["memberIds"] if member in candidates}

    async def page_for_member(self, user_id: str, limit: int, after: tuple[datetime, str] | None,
                              known: Callable[[str], Activity | None]) -> list[Conversation]:
        """The user's conversations, latest activity first, after a (lastActivityAt, id) cursor.

        Ordered here from the user's conversation ids (at most CONTACTS_SCAN) and their activity,
        stored or `known` to this process and not yet written: two indexed reads, then only the
        page's conversations are read whole.
        """
        cursor = self._conversations.find({"memberIds": user_id}, {"createdAt": 1}).limit(CONTACTS_SCAN)
        created = {doc["_id"]: doc["createdAt"] async for doc in cursor}
        activity = {doc["_id"]: doc async for doc in self._activity.find({"_id": {"$in": list(created)}})}
        latest = {cid: max(at, (activity.get(cid) or {}).get("lastActivityAt") or at,
                           getattr(known(cid), "last_at", None) or at) for cid, at in created.items()}
        order = sorted(created, key=lambda cid: (latest[cid], cid), reverse=True)
        if after is not None:
            order = [cid for cid in order if (latest[cid], cid) < after]
        page = order[:limit]
        docs = {doc["_id"]: doc async for doc in self._conversations.find({"_id": {"$in": page}})}
        return [_conversation(docs[cid], activity.get(cid)) for cid in page if cid in docs]

    async def stored_last_seq(self, conversation_id: str) -> int:
        """`lastSeq` as stored (a lower bound: activity is written behind)."""
        doc = await self._activity.find_one({"_id": conversation_id}, {"lastSeq": 1})
        return int(doc.get("lastSeq", 0)) if doc else 0

    async def move_markers(self, conversation_id: str, user_id: str, delivered: int,
                           read: int | None) -> tuple[Markers, Markers]:
        """Move a member's markers forward only ($max); returns (before, after) as stored.

        Read, then a `$max` upsert only when something moves, then read again: index-routed on
        every store (a find-and-modify is a collection scan on SecantusDB, see docs/storage.md).
        """
        key = {"conversationId": conversation_id, "userId": user_id}
        before = _markers(await self._markers.find_one(key))
        if delivered <= before.delivered_seq and (read or 0) <= before.read_seq:
            return before, before
        update: Doc = {"deliveredSeq": delivered}
        if read is not None:
            update["readSeq"] = read
        try:
            await self._markers.update_one(key, {"$max": update}, upsert=True)
        except DuplicateKeyError:  # a concurrent first move inserted it: now it is an update
            await self._markers.update_one(key, {"$max": update})
        return before, _markers(await self._markers.find_one(key))

    async def markers_of(self, conversation_ids: list[str], user_id: str) -> dict[str, Markers]:
        """The user's markers in each of the conversations (absent means nothing read)."""
        cursor = self._markers.find({"conversationId": {"$in": conversation_ids}, "userId": user_id})
        return {doc["conversationId"]: _markers(doc) async for doc in cursor}
