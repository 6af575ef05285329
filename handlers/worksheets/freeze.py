"""Freezes: the documents a submission under way has frozen (no write starts on them), and the writes of each
document in flight (a freeze is confirmed only once they settled).

Each submission's freeze is its own (named by the submission's nonce): two submissions of one document under way
at once (a double click, two devices) do not end each other's freeze. A freeze is temporary: it ends when the
submission is stored (the document is then locked for good: the stored status says so) or fails (the submitter
sends an unfreeze). A process that misses both still stops refusing after `until`, and re-reads the stored
status before it accepts the next write (see LiveHandler._writable).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

HELD = 1_000  # frozen documents kept before the expired freezes are swept (a missed unfreeze leaves one behind)


class Freezes:
    """Frozen documents (until when) and the writes of each document under way, in one process."""

    def __init__(self) -> None:
        self._until: dict[str, dict[str, datetime]] = {}  # document -> freeze nonce -> until
        self._writing: dict[str, tuple[int, asyncio.Event]] = {}  # document -> (writes under way, set when none)

    def freeze(self, document_id: str, nonce: str, now: datetime, until: datetime) -> None:
        """No write of the document starts before `until` (or the thaw of this freeze)."""
        if len(self._until) >= HELD:
            for stale in list(self._until):
                self.expired(stale, now)
        self._until.setdefault(document_id, {})[nonce] = until

    def thaw(self, document_id: str, nonce: str | None = None) -> None:
        """A freeze ended (its submission failed), or all of them (`nonce` None: the submission was stored)."""
        freezes = self._until.get(document_id, {})
        if nonce is None:
            freezes.clear()
        freezes.pop(nonce or "", None)
        if not freezes:
            self._until.pop(document_id, None)

    def frozen(self, document_id: str, now: datetime) -> bool:
        """Whether a freeze of the document holds at `now`."""
        return any(now < until for until in self._until.get(document_id, {}).values())

    def expired(self, document_id: str, now: datetime) -> bool:
        """Whether the document had freezes that ran out unended by `now` (dropped here): a submission that froze
        it may have been stored, so its status must be read again."""
        freezes = self._until.get(document_id)
        if not freezes:
            return False
        ran_out = [nonce for nonce, until in freezes.items() if until <= now]
        for nonce in ran_out:
            del freezes[nonce]
        if not freezes:
            del self._until[document_id]
        return bool(ran_out)

    @contextmanager
    def writing(self, document_id: str) -> Iterator[None]:
        """A write of the document under way (counted until it settles)."""
        count, settled = self._writing.get(document_id, (0, asyncio.Event()))
        self._writing[document_id] = (count + 1, settled)
        try:
            yield
        finally:
            count, settled = self._writing[document_id]
            if count > 1:
                self._writing[document_id] = (count - 1, settled)
            else:
                del self._writing[document_id]
                settled.set()

    async def settled(self, document_id: str) -> None:
        """Until no write of the document is under way (none starts while it is frozen)."""
        while (writing := self._writing.get(document_id)) is not None:
            await writing[1].wait()
