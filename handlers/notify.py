"""How any feature asks for a user to be notified (implemented by the notifications feature)."""
from __future__ import annotations

from typing import Any, Protocol

CATEGORIES = ("booking", "message", "worksheet", "billing", "meeting", "system")


class Notifier(Protocol):
    """Creates a notification and delivers it in-app (and by Web Push when due)."""

    async def notify(self, user_id: str, *, category: str, title: str, body: str,
                     data: dict[str, Any] | None = None, critical: bool = False,
                     dedupe_key: str | None = None) -> dict[str, Any] | None:
        """Notify one user. With `dedupe_key`, a second call with the same key for the same user
        creates nothing and returns None (exactly-once for retried jobs). Never put health details
        (message text, notes, answers) in title or body."""
