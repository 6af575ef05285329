"""Notification preferences: per-category `{inApp, push}` over defaults, and quiet hours.

`push` is `true` (push when the user has no live socket on /notifications, the default),
`false` (never), or `"always"` (push even while a socket is live).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.notify import CATEGORIES
from handlers.notifications.quiet_hours import quiet_until
from handlers.serialize import camel
from stores.notifications.preferences import PreferenceStore

ALWAYS = "always"


def effective(chosen: dict[str, Any]) -> dict[str, Any]:
    """The full Preferences object: every category, with the user's choices over the defaults."""
    categories = {name: {"inApp": True, "push": True} for name in CATEGORIES}
    for name, values in (chosen.get("categories") or {}).items():
        if name in categories:
            categories[name].update(values)
    return {"categories": categories, "quietHours": chosen.get("quietHours")}


@dataclass(frozen=True)
class Delivery:
    """How one notification reaches its user."""

    in_app: bool
    push: bool
    push_after: datetime | None  # held for quiet hours until then


def decide(prefs: dict[str, Any], category: str, critical: bool, live: bool, now: datetime) -> Delivery:
    """Apply the category switches, the live socket and quiet hours (critical overrides opt-outs)."""
    switches = prefs["categories"][category]
    mode = switches.get("push", True)
    if critical and mode is False:
        mode = True
    push = mode == ALWAYS or (mode is True and not live)
    held = None if critical or not push else quiet_until(prefs.get("quietHours"), now)
    return Delivery(in_app=critical or bool(switches.get("inApp", True)), push=push, push_after=held)


class PreferenceHandler:
    """preferences:get / preferences:set."""

    def __init__(self, store: PreferenceStore) -> None:
        self._store = store

    async def get(self, user_id: str) -> dict[str, Any]:
        """The user's effective preferences."""
        return effective(await self._store.get(user_id))

    async def set(self, user_id: str, categories: dict[str, dict[str, Any]] | None = None,
                  **rest: Any) -> dict[str, Any]:
        """Change the given switches; `quietHours: null` removes quiet hours."""
        switches = {name: {camel(key): value for key, value in values.items()}
                    for name, values in (categories or {}).items()}
        chosen = await self._store.update(user_id, switches, rest.get("quiet_hours"),
                                          "quiet_hours" in rest)
        return effective(chosen)
