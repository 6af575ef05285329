"""Notification preferences: per-category `{inApp, push, email}` over defaults, and quiet hours.

`push` is `true` (push when the user has no live socket on /notifications, the default),
`false` (never), or `"always"` (push even while a socket is live). `email` is on by default only for
EMAIL_BY_DEFAULT; email goes out when the user has no live socket, digested (handlers/notifications/email.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.notifications.categories import CATEGORIES
from handlers.notifications.quiet_hours import quiet_until
from stores.notifications.preferences import CategoryChoice, ChosenPreferences, PreferenceStore, PushSwitch, QuietHours

ALWAYS = "always"
EMAIL_BY_DEFAULT = frozenset({"booking", "billing"})


@dataclass(frozen=True)
class Switches:
    """How one category reaches the user."""

    in_app: bool
    push: PushSwitch
    email: bool


@dataclass(frozen=True)
class Preferences:
    """The full Preferences object: every category, with the user's choices over the defaults."""

    categories: dict[str, Switches]
    quiet_hours: QuietHours | None


def effective(chosen: ChosenPreferences) -> Preferences:
    """Every category with the user's choices over the defaults (`inApp: true, push: true`)."""
    categories = {}
    for name in CATEGORIES:
        choice = chosen.categories.get(name, CategoryChoice())
        categories[name] = Switches(in_app=True if choice.in_app is None else choice.in_app,
                                    push=True if choice.push is None else choice.push,
                                    email=name in EMAIL_BY_DEFAULT if choice.email is None else choice.email)
    return Preferences(categories, chosen.quiet_hours)


@dataclass(frozen=True)
class Delivery:
    """How one notification reaches its user."""

    in_app: bool
    push: bool
    push_after: datetime | None  # held for quiet hours until then
    email: bool = False
    email_after: datetime | None = None  # held for quiet hours until then


def decide(prefs: Preferences, category: str, critical: bool, live: bool, now: datetime) -> Delivery:
    """Apply the category switches, the live socket and quiet hours (critical overrides opt-outs)."""
    switches = prefs.categories[category]
    mode = switches.push
    if critical and mode is False:
        mode = True
    push = mode == ALWAYS or (mode is True and not live)
    quiet = None if critical else quiet_until(prefs.quiet_hours, now)
    email = not live and (critical or switches.email)
    return Delivery(in_app=critical or switches.in_app, push=push, push_after=quiet if push else None,
                    email=email, email_after=quiet if email else None)


class PreferenceHandler:
    """preferences:get / preferences:set."""

    def __init__(self, store: PreferenceStore) -> None:
        self._store = store

    async def get(self, user_id: str) -> Preferences:
        """The user's effective preferences."""
        return effective(await self._store.get(user_id))

    async def change(self, user_id: str, categories: dict[str, dict[str, Any]] | None = None,
                     **rest: Any) -> Preferences:
        """Change the given switches; `quietHours: null` removes quiet hours."""
        choices = {name: CategoryChoice(in_app=values.get("in_app"), push=values.get("push"),
                                        email=values.get("email"))
                   for name, values in (categories or {}).items()}
        quiet = rest.get("quiet_hours")
        chosen = await self._store.update(user_id, choices, QuietHours(**quiet) if quiet else None,
                                          "quiet_hours" in rest)
        return effective(chosen)
