"""Worksheets: templates, assignments and their live documents, reminders and compaction, built from their stores."""
from __future__ import annotations

from datetime import timedelta

from handlers.feature import Built, Shared
from handlers.jobs import Periodic
from handlers.worksheets.announce import Announcer
from handlers.worksheets.assignments import Acquaintance, AssignmentDeps, AssignmentHandler
from handlers.worksheets.live import LiveDeps, LiveHandler, LiveSettings
from handlers.worksheets.reminders import AssignmentReminders
from handlers.worksheets.worksheets import WorksheetHandler
from stores.booking.bookings import BookingStore
from stores.chat.conversations import ConversationStore
from stores.worksheets.assignments import AssignmentStore
from stores.worksheets.documents import DocumentStore
from stores.worksheets.relay import DocRelay, LocalRelay, RedisRelay
from stores.worksheets.reminders import AssignmentReminderStore
from stores.worksheets.worksheets import WorksheetStore


class WorksheetsFeature:
    """The handlers behind /worksheets."""

    def __init__(self, worksheets: WorksheetHandler, assignments: AssignmentHandler, live: LiveHandler,
                 reminders: AssignmentReminders, relay: DocRelay) -> None:
        self.worksheets = worksheets
        self.assignments = assignments
        self.live = live
        self.reminders = reminders
        self.relay = relay

    async def tick(self) -> None:
        """The scheduler loop: due reminders, then compaction of idle documents."""
        await self.reminders.tick()
        await self.live.compact_idle()


async def build(shared: Shared) -> Built[WorksheetsFeature]:
    """Create the worksheet stores (ensuring their indexes) and handlers; start listening to other processes."""
    config = shared.config
    worksheet_store, assignment_store = WorksheetStore(shared.db), AssignmentStore(shared.db, shared.cipher)
    documents = DocumentStore(shared.db, shared.cipher, config.worksheet_write_interval_ms / 1000)
    reminder_store = AssignmentReminderStore(shared.db)
    for store in (worksheet_store, assignment_store, documents, reminder_store):
        await store.ensure_indexes()
    await documents.adopt_legacy_log()
    shared.relations.add(assignment_store.related)
    relay: DocRelay = LocalRelay()
    if shared.redis is not None:
        relay = RedisRelay(shared.redis, config.redis_prefix, config.redis_url)
    worksheets = WorksheetHandler(worksheet_store, assignment_store, shared.clock)
    announcer = Announcer(assignment_store, shared.publisher)
    settings = LiveSettings(config.worksheet_compact_every, timedelta(seconds=config.worksheet_compact_idle_seconds),
                            config.worksheet_documents_held, config.worksheet_shed_lag_ms / 1000)
    live = LiveHandler(LiveDeps(documents, assignment_store, worksheets, announcer, relay, shared.publisher,
                                shared.sockets, shared.clock), settings)
    relations = Acquaintance(BookingStore(shared.db), ConversationStore(shared.db))
    reminders = AssignmentReminders(reminder_store, assignment_store, shared.bus,
                                    timedelta(seconds=config.worksheet_lease_seconds), shared.clock)
    reminders.counters = shared.jobs.queue("worksheet-reminders")
    assignments = AssignmentHandler(assignment_store, AssignmentDeps(worksheets, live, relations, reminder_store,
                                                                     announcer, shared.bus, shared.clock,
                                                                     shared.users, shared.documents))
    relay.start(live.relayed)
    live.lag.start()
    feature = WorksheetsFeature(worksheets, assignments, live, reminders, relay)
    scheduler = Periodic("worksheet-scheduler", config.worksheet_tick_seconds, feature.tick)

    async def close() -> None:
        live.lag.stop()
        await relay.close()
        await live.drain()
        await documents.drain()

    return Built(feature, jobs=(scheduler,), close=close)
