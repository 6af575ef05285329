"""Bring chat data stored before the single-write send path (session 2) to the current layout.

Runs at start-up and costs one `index_information` call once done. Before: conversations had
unique `pairKey` and `requestKey` fields and carried `lastSeq` / `lastActivityAt` themselves;
messages had a unique `(senderId, requestId)` index. Now: one unique `key`, activity in
`chat_activity`, requestId idempotency on the message `_id` (old messages keep their ids).
"""
from __future__ import annotations

import logging

from stores.mongo import Database, Doc

log = logging.getLogger("careline.chat")

LEGACY_CONVERSATION_INDEXES = ("pairKey_1", "requestKey_1")
LEGACY_MESSAGE_INDEX = "senderId_1_requestId_1"


def _key(doc: Doc) -> str:
    """The current unique key of a legacy conversation."""
    if not str(doc.get("pairKey", "")).startswith("group:"):
        return "pair:" + doc["pairKey"]
    request_key = str(doc.get("requestKey", ""))
    return "group-id:" + request_key[3:] if request_key.startswith("id:") else "group:" + request_key


async def migrate_chat(db: Database) -> None:
    """Give legacy conversations their `key` and stored activity, then drop the legacy indexes."""
    conversations, activity = db["chat_conversations"], db["chat_activity"]
    legacy = [name for name in LEGACY_CONVERSATION_INDEXES if name in await conversations.index_information()]
    if legacy:
        moved = 0
        async for doc in conversations.find({"pairKey": {"$exists": True}}):
            update: Doc = {"$set": {"key": _key(doc)}, "$unset": {"pairKey": "", "requestKey": ""}}
            await conversations.update_one({"_id": doc["_id"]}, update)
            if doc.get("lastSeq"):
                await activity.update_one({"_id": doc["_id"]}, {"$max": {
                    "lastSeq": doc["lastSeq"], "lastActivityAt": doc["lastActivityAt"]}}, upsert=True)
            moved += 1
        for name in legacy:
            await conversations.drop_index(name)
        log.info("chat: %d conversations moved to the current layout", moved)
    if LEGACY_MESSAGE_INDEX in await db["chat_messages"].index_information():
        await db["chat_messages"].drop_index(LEGACY_MESSAGE_INDEX)
