"""Freezes: the documents a submission under way has frozen (no write starts on them), and the writes of each
document in flight (a freeze is confirmed only once they settled).

A freeze is temporary: it ends when the submission is stored (the document is then locked for good: the stored
status says so) or fails (the submitter sends an unfreeze). A process that misses both still stops refusing
after `until`, and re-reads the stored status before it accepts the next write (see LiveHandler._writable).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

HELD = 1_000  # freezes kept before the expired ones are swept (a missed unfreeze leaves one behind)


class Freezes:
    """Frozen documents (until when) and the writes of each document under way, in one process."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}
        self._writes: dict[str, int] = {}
        self._settled: dict[str, asyncio.Event] = {}

    def freeze(self, document_id: str, now: datetime, until: datetime) -> None:
        """No write of the document starts before `until` (or the thaw)."""
        if len(self._until) >= HELD:
            for expired in [key for key, end in self._until.items() if end <= now]:
                del self._until[expired]
        self._until[document_id] = until

    def thaw(self, document_id: str) -> None:
        """The freeze ended (the submission was stored or failed)."""
        self._until.pop(document_id, None)

    def frozen(self, document_id: str, now: datetime) -> bool:
        """Whether a freeze of the document holds at `now`."""
        until = self._until.get(document_id)
        return until is not None and now < until

    def expired(self, document_id: str, now: datetime) -> bool:
        """Whether the document had a freeze that ran out unheard of by `now` (dropped here): the submission
        that froze it may have been stored, so its status must be read again."""
        until = self._until.get(document_id)
        if until is None or now < until:
            return False
        del self._until[document_id]
        return True

    @contextmanager
    def writing(self, document_id: str) -> Iterator[None]:
        """A write of the document under way (counted until it settles)."""
        self._writes[document_id] = self._writes.get(document_id, 0) + 1
        self._settled.setdefault(document_id, asyncio.Event())
        try:
            yield
        finally:
            self._writes[document_id] -= 1
            if not self._writes[document_id]:
                del self._writes[document_id]
                self._settled.pop(document_id).set()

    async def settled(self, document_id: str) -> None:
        """Until no write of the document is under way (none starts while it is frozen)."""
        while (settled := self._settled.get(document_id)) is not None:
            await settled.wait()
