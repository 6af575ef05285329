"""Conversation activity (`chat_activity`) written behind: last seq, last activity, each member's last sent seq.

A message is durable once its own document is stored; what it changes on its conversation
(`lastSeq`, `lastActivityAt`, and the sender's `sentSeq`, which counts as the sender's read
marker) is derived data. Writing it with every message would double the database writes of a
send, so sends note it here and it is flushed with one `bulk_write` of `$max` updates (which
commute, so order and repeats do not matter) at most `interval` seconds later, and on shutdown.
This process overlays what it knows on every conversation it reads, so its own readers never see
the lag; other processes see it for at most `interval` seconds. After a crash the stored values
can lag the messages: readers treat `lastSeq` as a lower bound and look past it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from stores.mongo import Collection, Doc

log = logging.getLogger("careline.chat")

FLUSH_CHUNK = 10  # updates per bulk_write; chunks are spread over half the interval, so sends waiting on the
# database never queue behind one long write (the flush is background work, sends are not)
KNOWN_CONVERSATIONS = 50_000  # conversations whose latest activity this process remembers for overlays

SentCallback = Callable[[list[tuple[str, str, int]]], Awaitable[None]]  # (conversation, sender, seq) after flush


def sent_field(user_id: str) -> str:
    """The field holding a member's last sent seq (hex: user ids may hold `.` or `$`)."""
    return "sentSeq." + user_id.encode().hex()


def decode_sent(doc: Doc) -> dict[str, int]:
    """`sentSeq` of a stored conversation as {userId: seq}."""
    return {bytes.fromhex(key).decode(): int(seq) for key, seq in (doc.get("sentSeq") or {}).items()}


@dataclass
class Activity:
    """The newest activity of one conversation."""

    last_seq: int = 0
    last_at: datetime | None = None
    sent: dict[str, int] = field(default_factory=dict)

    def merge(self, seq: int, at: datetime, sender_id: str) -> None:
        """Take a message into account (maxima only)."""
        self.last_seq = max(self.last_seq, seq)
        self.last_at = at if self.last_at is None else max(self.last_at, at)
        self.sent[sender_id] = max(self.sent.get(sender_id, 0), seq)


class ActivityWriter:
    """Notes message activity and flushes it to `chat_activity`."""

    def __init__(self, conversations: Collection, interval: float = 1.0,
                 on_flushed: SentCallback | None = None) -> None:
        self._conversations = conversations
        self.interval = interval
        self._on_flushed = on_flushed
        self._pending: dict[str, Activity] = {}
        self._known: OrderedDict[str, Activity] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def note(self, conversation_id: str, seq: int, at: datetime, sender_id: str) -> None:
        """A message was stored; its conversation's activity is written within `interval` seconds."""
        self._pending.setdefault(conversation_id, Activity()).merge(seq, at, sender_id)
        known = self._known.get(conversation_id)
        if known is None:
            known = self._known[conversation_id] = Activity()
            if len(self._known) > KNOWN_CONVERSATIONS:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(conversation_id)
        known.merge(seq, at, sender_id)
        if self._timer is None and self._flushing is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._start_flush)

    def known(self, conversation_id: str) -> Activity | None:
        """What this process knows of the conversation's latest activity (possibly not yet stored)."""
        return self._known.get(conversation_id)

    async def flush(self) -> None:
        """Write everything noted so far (before reading order-sensitive lists, and on shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._pending:
            self._flushing = asyncio.ensure_future(self._write())
            await asyncio.shield(self._flushing)

    def _start_flush(self) -> None:
        self._timer = None
        if self._flushing is None and self._pending:
            self._flushing = asyncio.ensure_future(self._write(spread=True))

    async def _write(self, spread: bool = False) -> None:
        pending, self._pending = self._pending, {}
        updates = [self._update(cid, activity) for cid, activity in pending.items()]
        chunks = range(0, len(updates), FLUSH_CHUNK)
        pause = self.interval / 2 / len(chunks) if spread else 0.0
        try:
            for start in chunks:
                await self._conversations.bulk_write(updates[start:start + FLUSH_CHUNK], ordered=False)
                if pause and start + FLUSH_CHUNK < len(updates):
                    await asyncio.sleep(pause)
        except (PyMongoError, OSError) as error:
            log.warning("conversation activity not written, retrying: %s", type(error).__name__)
            for cid, activity in pending.items():
                if activity.last_at is None:
                    continue  # noted activity always has a time; nothing to write again
                again = self._pending.setdefault(cid, Activity())
                for sender, seq in activity.sent.items():
                    again.merge(seq, activity.last_at, sender)
            pending = {}
        finally:
            self._flushing = None
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.interval, self._start_flush)
        if pending and self._on_flushed is not None:
            await self._on_flushed([(cid, sender, seq) for cid, activity in pending.items()
                                    for sender, seq in activity.sent.items()])

    @staticmethod
    def _update(conversation_id: str, activity: Activity) -> UpdateOne:
        newest: Doc = {"lastSeq": activity.last_seq, "lastActivityAt": activity.last_at}
        newest.update({sent_field(sender): seq for sender, seq in activity.sent.items()})
        return UpdateOne({"_id": conversation_id}, {"$max": newest}, upsert=True)
