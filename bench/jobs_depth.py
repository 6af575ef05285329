"""Job-monitor cost (not a test): each queue's depth read on SecantusDB with 20,000 documents none of them due.

    python -m bench.jobs_depth [--documents 20000]

Creates each queue's collection with the indexes its store makes, fills it with documents that are not due
(sent reminders, applied events, meetings without `dueAt`, ...), then times `QueueProbe.depth` (one
aggregation on the due range, plus the failed count where the queue gives up) and one `job:list` page. An
index range costs a few ms whatever the collection's size; a collection scan costs hundreds.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import parse_message_keys
from stores.billing.inbox import WebhookInbox
from stores.billing.ledger import RefundClaimStore
from stores.booking.bookings import BookingStore
from stores.booking.reminders import ReminderStore
from stores.chat.uploads import UploadStore
from stores.crypto import Cipher
from stores.embedded import EmbeddedMongo
from stores.meetings.meetings import MeetingStore
from stores.mongo import Database
from stores.mongo import connect as mongo_connect
from stores.notifications.email import EmailQueue
from stores.notifications.store import NotificationStore
from stores.queues import SPECS, QueueProbe
from stores.worksheets.reminders import AssignmentReminderStore

MESSAGE_KEYS = "k1:" + "A" * 43


def not_due(now: datetime) -> dict[str, Callable[[int], dict[str, Any]]]:
    """Per collection, a document that is not a due job (the common case: finished or future work)."""
    later, earlier = now + timedelta(days=30), now - timedelta(hours=1)
    return {
        "email_outbox": lambda n: {"state": "sent", "slot": n % 64, "dueAt": now, "userId": f"u{n}", "category": "b"},
        "notification_held_pushes": lambda n: {"pushAfter": later},
        "booking_reminders": lambda n: {"sent": True, "claimableAt": now, "dueAt": now, "bookingId": f"b{n}"},
        "bookings": lambda n: {"status": "confirmed", "expiresAt": now, "start": now, "clientId": f"c{n}",
                               "requestId": f"r{n}", "therapistId": "t"},
        "meetings": lambda n: {"start": now, "key": f"k{n}", "members": ["a"]},  # no `dueAt`: decided
        "worksheet_reminders": lambda n: {"sent": True, "claimableAt": now},
        "uploads": lambda n: {"conversationIds": [f"c{n}"], "createdAt": now - timedelta(days=3), "ownerId": "o"},
        "billing_webhook_events": lambda n: {"applied": True, "nextAt": now},
        "billing_refund_claims": lambda n: {"refundId": f"re{n}", "at": earlier},
    }


async def create_indexes(db: Database) -> None:
    """The indexes each owning store creates."""
    cipher = Cipher(parse_message_keys(MESSAGE_KEYS))
    stores = (EmailQueue(db), NotificationStore(db), ReminderStore(db), BookingStore(db), MeetingStore(db),
              AssignmentReminderStore(db), UploadStore(db, cipher), WebhookInbox(db), RefundClaimStore(db))
    for store in stores:
        await store.ensure_indexes()


async def main() -> None:
    parser = argparse.ArgumentParser(description="careline job monitor: cost of a depth read per queue")
    parser.add_argument("--documents", type=int, default=20_000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; load {os.getloadavg()[0]:.1f}; SecantusDB; {args.documents} documents per "
          "collection, none due")
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    client = mongo_connect(mongo.uri, timeout_ms=120_000, retry_writes=False)
    try:
        db = client["jobs_depth"]
        await create_indexes(db)
        now = datetime.now(UTC)
        fill = not_due(now)
        for spec in SPECS.values():
            await db[spec.collection].insert_many([{"_id": f"d{n}", **fill[spec.collection](n)}
                                                   for n in range(args.documents)])
            probe = QueueProbe(db, spec)
            started = time.perf_counter()
            depth = await probe.depth(now)
            middle = time.perf_counter()
            await probe.page("due", now, None, 50)
            ended = time.perf_counter()
            print(f"{spec.name:20s} depth {(middle - started) * 1000:7.1f} ms   job:list page "
                  f"{(ended - middle) * 1000:7.1f} ms   due {depth.due}")
    finally:
        await client.close()
        mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())
