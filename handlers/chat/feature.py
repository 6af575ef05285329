"""Chat: the handlers behind /chat, built from their stores (see docs/chat.md)."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from config import Config
from handlers.chat.access import ChatDeps
from handlers.chat.conversations import ConversationHandler
from handlers.chat.live import PresenceTracker, TypingTracker
from handlers.chat.messages import MessageHandler
from handlers.chat.moderation import ModerationHandler
from handlers.chat.content_rules import ContentRules
from handlers.events import EventBus
from handlers.publisher import Publisher
from stores.chat.blind_index import BlindIndex
from stores.chat.conversations import ConversationStore
from stores.chat.activity import ActivityWriter
from stores.chat.moderation import BlockStore, ReportStore
from stores.chat.migrations import migrate_chat
from stores.chat.seq import LocalSeqAllocator, RedisSeqAllocator, SeqAllocator
from stores.crypto import Cipher
from stores.chat.messages import MessageStore
from stores.mongo import Database
from stores.sockets import SocketRegistry
from stores.chat.uploads import UploadStore
from stores.users import UserStore


class ChatHandler:
    """Every chat handler of one app: conversations, messages, moderation, typing, presence."""

    def __init__(self, deps: ChatDeps, rules: ContentRules) -> None:
        self.deps = deps
        self.conversations = ConversationHandler(deps)
        self.moderation = ModerationHandler(deps, rules)
        self.messages = MessageHandler(deps, self.conversations, self.moderation)
        self.typing = TypingTracker(deps)
        self.presence = PresenceTracker(deps)

    async def member_of_any(self, user_id: str, conversation_ids: list[str]) -> bool:
        """Whether the user belongs to any of the conversations (the upload download check)."""
        return await self.deps.conversations.member_of_any(user_id, conversation_ids)


    async def close(self) -> None:
        """Write what is still queued (shutdown)."""
        await self.deps.messages.drain()
        await self.deps.activity.flush()


def _seq_allocator(config: Config, redis: Any, conversations: ConversationStore,
                   messages: MessageStore) -> SeqAllocator:
    async def stored_max(conversation_id: str) -> int:
        return await messages.max_seq(conversation_id, await conversations.stored_last_seq(conversation_id))

    if redis is not None:
        return RedisSeqAllocator(redis, config.redis_prefix, stored_max)
    return LocalSeqAllocator(stored_max)


def _read_by_sending(bus: EventBus) -> Callable[[list[tuple[str, str, int]]], Awaitable[None]]:
    """Sending reads the conversation up to one's own message: announced once the activity is stored."""
    async def announce(sent: list[tuple[str, str, int]]) -> None:
        for conversation_id, user_id, seq in sent:
            await bus.publish("conversation.read", conversation_id=conversation_id, user_id=user_id, seq=seq)
    return announce


async def build_chat(config: Config, db: Database, redis: Any, cipher: Cipher, users: UserStore,
                     uploads: UploadStore, publisher: Publisher, sockets: SocketRegistry,
                     bus: EventBus) -> ChatHandler:
    """Create the chat stores (ensuring their indexes), load the content rules, and the handler."""
    conversations = ConversationStore(db)
    messages = MessageStore(db, cipher, BlindIndex(config.message_keys), config.chat_write_interval_ms / 1000)
    deps = ChatDeps(config=config, conversations=conversations, messages=messages, blocks=BlockStore(db),
                    reports=ReportStore(db), users=users, uploads=uploads, publisher=publisher, sockets=sockets,
                    bus=bus, seqs=_seq_allocator(config, redis, conversations, messages),
                    activity=ActivityWriter(conversations.activity_collection, config.chat_activity_flush_seconds,
                                            _read_by_sending(bus)))
    await migrate_chat(db)  # before the indexes: legacy conversations have no `key` yet
    for store in (deps.conversations, deps.messages, deps.blocks, deps.reports):
        await store.ensure_indexes()
    rules = ContentRules.load(config.chat_blocklist_file, config.chat_crisis_phrases_file)
    return ChatHandler(deps, rules)
