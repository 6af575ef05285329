"""Chat messages (`chat_messages`): text only as AES-256-GCM ciphertext, plus a blind index for search."""
from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from clock import utcnow
from stores.chat.blind_index import BlindIndex
from stores.chat.uploads import Attachment, attachment_doc, attachment_of
from stores.crypto import Cipher, DecryptionError
from stores.group_commit import GroupInsert
from stores.mongo import Database, Doc

log = logging.getLogger("careline.chat")

SEQ_KEY = {"conversationId": 1, "seq": 1}  # the unique index a colliding seq violates
RECENT_REQUESTS = 20_000  # (sender, requestId) of recent sends one process remembers: repeats take no seq
SEARCH_SCAN = 5000  # candidate messages looked at per search (bounded work)
TOGGLE_ATTEMPTS = 8
MAX_REACTION_KEYS = 500  # (emoji, user) pairs per message


@dataclass(frozen=True)
class Message:
    """One message, decrypted."""

    id: str
    conversation_id: str
    seq: int
    sender_id: str
    text: str
    attachments: tuple[Attachment, ...]
    reply_to_id: str | None
    reactions: dict[str, list[str]]
    created_at: datetime
    edited_at: datetime | None
    deleted: bool



def reactions_of(keys: list[str]) -> dict[str, list[str]]:
    """`emoji\\nuserId` keys, in the order given, as `{emoji: [userId]}`."""
    reactions: dict[str, list[str]] = {}
    for key in keys:
        emoji, _, user_id = key.partition("\n")
        reactions.setdefault(emoji, []).append(user_id)
    return reactions


def message_id(sender_id: str, request_id: str) -> str:
    """A message's id: derived from sender and requestId, so the `_id` index makes sends idempotent.

    96 bits of SHA-256, shaped like an ObjectId string; it reveals neither input, and access is
    decided by membership, never by knowing an id.
    """
    return hashlib.sha256(f"{sender_id}\n{request_id}".encode()).hexdigest()[:24]


class SeqTaken(Exception):
    """Another message already has this seq (a counter was behind the store)."""


class MessageStore:
    """Named queries on messages; encrypts on the way in, decrypts on the way out."""

    def __init__(self, db: Database, cipher: Cipher, index: BlindIndex, batch_interval: float = 0.0) -> None:
        self._messages = db["chat_messages"]
        self._inserts = GroupInsert(self._messages, min_interval=batch_interval)
        self._recent: OrderedDict[str, None] = OrderedDict()  # ids of recent sends
        self._cipher = cipher
        self.index = index

    async def ensure_indexes(self) -> None:
        """Seq per conversation and the token index for search (requestId rides on `_id`, see `message_id`)."""
        await self._messages.create_index([("conversationId", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self._messages.create_index([("tokens", ASCENDING), ("conversationId", ASCENDING)])

    def _open(self, doc: Doc) -> str:
        """The plaintext; an undecryptable text (tampered, key removed) reads as empty and is logged."""
        if not doc.get("text"):
            return ""
        try:
            return self._cipher.open_text(doc["text"], doc["_id"])
        except DecryptionError as error:
            log.warning("message %s cannot be decrypted: %s", doc["_id"], error)
            return ""

    def _message(self, doc: Doc, text: str | None = None) -> Message:
        """The Message of a stored document (`text`: its plaintext when the caller has it, else decrypted)."""
        text = self._open(doc) if text is None else text
        return Message(id=doc["_id"], conversation_id=doc["conversationId"], seq=doc["seq"], sender_id=doc["senderId"],
                       text=text, attachments=tuple(attachment_of(a) for a in doc.get("attachments", [])),
                       reply_to_id=doc.get("replyToId"),
                       reactions=reactions_of(doc.get("reactionKeys", [])), created_at=doc["createdAt"],
                       edited_at=doc.get("editedAt"), deleted=doc.get("deleted", False))

    def _text_fields(self, message_id: str, text: str) -> Doc:
        """Ciphertext and blind-index tokens of a text (nothing in clear)."""
        sealed = self._cipher.seal_text(text, message_id) if text else None
        return {"text": sealed, "tokens": self.index.tokens(text), "tkid": self.index.current_kid}

    async def drain(self) -> None:
        """Wait for queued inserts (shutdown)."""
        await self._inserts.drain()

    async def by_request(self, sender_id: str, request_id: str) -> Message | None:
        """The message a sender already sent with this requestId."""
        return await self.get(message_id(sender_id, request_id))

    async def insert(self, conversation_id: str, seq: int, sender_id: str, request_id: str, text: str,
                     attachments: list[Attachment], reply_to_id: str | None) -> tuple[Message, bool]:
        """Store a new message (group-committed with concurrent sends).

        A duplicate requestId returns the first message and False; a seq already taken raises
        `SeqTaken` (the caller takes a new one).
        """
        new_id = message_id(sender_id, request_id)
        doc: Doc = {"_id": new_id, "conversationId": conversation_id, "seq": seq, "senderId": sender_id,
                    "requestId": request_id, "attachments": [attachment_doc(a) for a in attachments],
                    "replyToId": reply_to_id,
                    "reactionKeys": [], "createdAt": utcnow(), "editedAt": None, "deleted": False,
                    **self._text_fields(new_id, text)}
        try:
            await self._inserts.insert(doc)
        except DuplicateKeyError as error:
            if (error.details or {}).get("keyPattern") == SEQ_KEY:
                raise SeqTaken(conversation_id, seq) from None
            existing = await self.by_request(sender_id, request_id)
            if existing is None:
                raise
            return existing, False
        self._recent[new_id] = None
        if len(self._recent) > RECENT_REQUESTS:
            self._recent.popitem(last=False)
        return self._message(doc, text), True

    async def recent_request(self, sender_id: str, request_id: str) -> Message | None:
        """The message of a send this process stored recently with this requestId (a repeat), if any.

        Catching repeats here keeps them from taking a seq that would stay a gap; a repeat this
        process does not remember is still caught by the unique `_id`.
        """
        repeated = message_id(sender_id, request_id)
        return await self.get(repeated) if repeated in self._recent else None

    @property
    def backlogged(self) -> bool:
        """Whether the database is so far behind that a new message would be refused."""
        return self._inserts.backlogged

    async def max_seq(self, conversation_id: str, at_least: int) -> int:
        """The highest stored seq, given a lower bound (an open range from it: no full-index sort)."""
        cursor = self._messages.find({"conversationId": conversation_id, "seq": {"$gte": at_least}}, {"seq": 1})
        return max([doc["seq"] async for doc in cursor], default=at_least)

    async def get(self, message_id: str) -> Message | None:
        """One message by id (callers check membership)."""
        doc = await self._messages.find_one({"_id": message_id})
        return self._message(doc) if doc else None

    async def get_many(self, message_ids: list[str]) -> dict[str, Message]:
        """Several messages by id."""
        cursor = self._messages.find({"_id": {"$in": message_ids}})
        return {doc["_id"]: self._message(doc) async for doc in cursor}

    async def edit(self, message: Message, text: str, not_before: datetime) -> Message | None:
        """Replace the text if still unchanged since `message` was read and created after `not_before`.

        The previous ciphertext moves to the (encrypted) edit history. None when the message changed
        meanwhile, was deleted, or the window has closed.
        """
        raw = await self._messages.find_one({"_id": message.id}, {"text": 1})
        previous = {"text": raw["text"] if raw else None, "editedAt": message.edited_at}
        changed = await self._messages.update_one(
            {"_id": message.id, "deleted": False, "editedAt": message.edited_at, "createdAt": {"$gte": not_before}},
            {"$set": {"editedAt": utcnow(), **self._text_fields(message.id, text)}, "$push": {"history": previous}})
        return await self.get(message.id) if changed.modified_count else None

    async def delete(self, message_id: str) -> Message | None:
        """Wipe text, history, tokens, attachments and reactions; keep id and seq. None if already deleted."""
        changed = await self._messages.update_one(
            {"_id": message_id, "deleted": False},
            {"$set": {"deleted": True, "text": None, "tokens": [], "history": [], "attachments": [],
                      "reactionKeys": [], "deletedAt": utcnow()}})
        return await self.get(message_id) if changed.modified_count else None

    async def toggle_reaction(self, message_id: str, emoji: str, user_id: str) -> Message | None:
        """Add the user's reaction if absent, else remove it (each step one atomic update).

        The message comes back as read after the toggle, with the user's own reaction as this toggle left it (a
        concurrent toggle of the same reaction may have flipped it again before the read: that one's answer
        says so). Not findAndModify: on SecantusDB it scans the whole collection (docs/storage.md).
        """
        key = f"{emoji}\n{user_id}"
        added: bool | None = None
        for _ in range(TOGGLE_ATTEMPTS):  # a concurrent toggle may flip it between our two steps: try again
            pushed = await self._messages.update_one(
                {"_id": message_id, "deleted": False, "reactionKeys": {"$ne": key}}, {"$push": {"reactionKeys": key}})
            if pushed.modified_count:
                added = True
                break
            pulled = await self._messages.update_one({"_id": message_id, "deleted": False, "reactionKeys": key},
                                                     {"$pull": {"reactionKeys": key}})
            if pulled.modified_count:
                added = False
                break
            if not await self._messages.count_documents({"_id": message_id, "deleted": False}):
                break
        message = await self.get(message_id)
        if message is None or added is None:
            return message
        keys = [f"{name}\n{user}" for name, users in message.reactions.items() for user in users]
        if not added:
            keys = [each for each in keys if each != key]
        elif key not in keys:
            keys.append(key)
        return replace(message, reactions=reactions_of(keys))

    async def reaction_count(self, message_id: str) -> int:
        """How many (emoji, user) reactions a message has."""
        doc = await self._messages.find_one({"_id": message_id}, {"reactionKeys": 1})
        return len(doc.get("reactionKeys", [])) if doc else 0

    async def seq_range(self, conversation_id: str, first: int, last: int | None = None) -> list[Message]:
        """Messages with first <= seq <= last (no upper bound when None), in seq order.

        Always a bounded index range on (conversationId, seq): a sort with a limit over the whole
        conversation would read every message of it on SecantusDB.
        """
        seq: Doc = {"$gte": first} if last is None else {"$gte": first, "$lte": last}
        cursor = self._messages.find({"conversationId": conversation_id, "seq": seq})
        return sorted([self._message(doc) async for doc in cursor], key=lambda message: message.seq)

    async def latest(self, conversation_id: str, last_seq: int) -> Message | None:
        """The newest stored message, given the (possibly lagging) last seq: looks a few seqs back
        for gaps and any distance forward."""
        found = await self.seq_range(conversation_id, max(1, last_seq - 4))
        return found[-1] if found else None

    async def count_unread(self, conversation_id: str, after_seq: int, user_id: str) -> int:
        """Messages from others after `after_seq` that are not deleted.

        The index range is (conversationId, seq > after_seq); sender and deletion are checked here,
        since a second operator in the filter would make SecantusDB walk the whole conversation
        (docs/storage.md, rule 4).
        """
        cursor = self._messages.find({"conversationId": conversation_id, "seq": {"$gt": after_seq}},
                                     {"senderId": 1, "deleted": 1, "_id": 0})
        return sum([1 async for doc in cursor if doc["senderId"] != user_id and not doc.get("deleted")])

    async def search(self, words: list[str], conversation_ids: list[str], limit: int) -> list[Message]:
        """Messages holding every word, newest first, from these conversations only.

        Queries the first (longest) word's token by equality (one query per index key) with the
        conversations by `$in`, both indexed; the other words are checked here on at most SEARCH_SCAN
        candidates.
        """
        pivot = max(words, key=len)
        matched: dict[str, tuple[datetime, str]] = {}
        for kid in self.index.kids:
            wanted = {self.index.token(word, kid) for word in words}
            cursor = self._messages.find({"tokens": self.index.token(pivot, kid),
                                          "conversationId": {"$in": conversation_ids}},
                                         {"tokens": 1, "tkid": 1, "createdAt": 1}).limit(SEARCH_SCAN)
            matched.update({doc["_id"]: (doc["createdAt"], doc["_id"]) async for doc in cursor
                            if doc.get("tkid") == kid and wanted.issubset(doc["tokens"])})
        newest = sorted(matched, key=matched.__getitem__, reverse=True)[:limit]
        found = await self.get_many(newest)
        return [found[i] for i in newest if i in found and not found[i].deleted]
