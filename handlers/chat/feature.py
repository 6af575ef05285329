"""Chat: the handlers behind /chat and its file uploads, built from their stores (see docs/chat.md)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from clock import Clock
from handlers.chat.access import ChatDeps
from handlers.chat.content_rules import ContentRules
from handlers.chat.conversations import ConversationHandler
from handlers.chat.live import PresenceTracker, TypingTracker
from handlers.chat.messages import MessageHandler
from handlers.chat.moderation import ModerationHandler
from handlers.chat.uploads import UploadHandler
from handlers.events import ConversationRead, EventBus
from handlers.feature import Built, Shared
from handlers.jobs import Periodic, counted
from stores.chat.activity import ActivityWriter
from stores.chat.blind_index import BlindIndex
from stores.chat.conversations import ConversationStore
from stores.chat.messages import MessageStore
from stores.chat.migrations import migrate_chat
from stores.chat.moderation import BlockStore, ReportStore
from stores.chat.seq import seq_allocator
from stores.chat.uploads import UploadStore

ORPHAN_SWEEP_SECONDS = 600.0


class ChatFeature:
    """Every chat handler of one app: conversations, messages, moderation, typing, presence, uploads."""

    def __init__(self, deps: ChatDeps, rules: ContentRules, clock: Clock) -> None:
        self.deps = deps
        self.conversations = ConversationHandler(deps)
        self.moderation = ModerationHandler(deps, rules)
        self.messages = MessageHandler(deps, self.conversations, self.moderation)
        self.typing = TypingTracker(deps)
        self.presence = PresenceTracker(deps)
        self.uploads = UploadHandler(deps.uploads, deps.config, clock, self.member_of_any)

    async def member_of_any(self, user_id: str, conversation_ids: list[str]) -> bool:
        """Whether the user belongs to any of the conversations (the upload download check)."""
        return await self.deps.conversations.member_of_any(user_id, conversation_ids)

    async def close(self) -> None:
        """Write what is still queued (shutdown)."""
        await self.deps.messages.drain()
        await self.deps.activity.flush()


def _read_by_sending(bus: EventBus) -> Callable[[list[tuple[str, str, int]]], Awaitable[None]]:
    """Sending reads the conversation up to one's own message: announced once the activity is stored."""
    async def announce(sent: list[tuple[str, str, int]]) -> None:
        for conversation_id, user_id, seq in sent:
            await bus.publish(ConversationRead(conversation_id, user_id, seq))
    return announce


async def build(shared: Shared) -> Built[ChatFeature]:
    """Create the chat stores (ensuring their indexes), load the content rules, and the handlers."""
    config, db = shared.config, shared.db
    conversations = ConversationStore(db)
    messages = MessageStore(db, shared.cipher, BlindIndex(config.message_keys), config.chat_write_interval_ms / 1000)
    deps = ChatDeps(config=config, conversations=conversations, messages=messages, blocks=BlockStore(db),
                    reports=ReportStore(db), users=shared.users, uploads=UploadStore(db, shared.cipher),
                    publisher=shared.publisher, sockets=shared.sockets, bus=shared.bus,
                    seqs=seq_allocator(shared.redis, config.redis_prefix, conversations, messages),
                    activity=ActivityWriter(conversations.activity_collection, config.chat_activity_flush_seconds,
                                            _read_by_sending(shared.bus)))
    await migrate_chat(db)  # before the indexes: legacy conversations have no `key` yet
    for store in (deps.conversations, deps.messages, deps.blocks, deps.reports, deps.uploads):
        await store.ensure_indexes()
    shared.relations.add(conversations.related)
    feature = ChatFeature(deps, ContentRules.load(config.chat_blocklist_file, config.chat_crisis_phrases_file),
                          shared.clock)
    sweep = counted(feature.uploads.sweep_orphans, shared.jobs.queue("upload-orphans"))
    orphans = Periodic("uploads-orphans", ORPHAN_SWEEP_SECONDS, sweep)
    return Built(feature, jobs=(orphans,), close=feature.close)
