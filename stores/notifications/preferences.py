"""The `notification_prefs` collection: per-user category switches and quiet hours."""
from __future__ import annotations

from dataclasses import dataclass, field

from clock import utcnow
from stores.mongo import Database, Doc

PushSwitch = bool | str  # true, false or "always"


@dataclass(frozen=True)
class CategoryChoice:
    """What a user chose for one category (None: the default)."""

    in_app: bool | None = None
    push: PushSwitch | None = None
    email: bool | None = None


@dataclass(frozen=True)
class QuietHours:
    """`start`-`end` ("HH:MM", may span midnight) in the IANA `timezone`."""

    start: str
    end: str
    timezone: str


@dataclass(frozen=True)
class ChosenPreferences:
    """Everything a user chose (categories not mentioned keep their defaults)."""

    categories: dict[str, CategoryChoice] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None


_STORED_SWITCH = {"in_app": "inApp", "push": "push", "email": "email"}


def _chosen(doc: Doc | None) -> ChosenPreferences:
    if not doc:
        return ChosenPreferences()
    categories = {name: CategoryChoice(in_app=values.get("inApp"), push=values.get("push"), email=values.get("email"))
                  for name, values in (doc.get("categories") or {}).items()}
    quiet = doc.get("quietHours")
    return ChosenPreferences(categories, QuietHours(quiet["start"], quiet["end"], quiet["timezone"]) if quiet else None)


class PreferenceStore:
    """Named queries on notification_prefs (keyed by user id)."""

    def __init__(self, db: Database) -> None:
        self._prefs = db["notification_prefs"]

    async def ensure_indexes(self) -> None:
        """Keyed by _id: nothing else to index."""

    async def get(self, user_id: str) -> ChosenPreferences:
        """What the user chose (nothing, for a user who never set preferences)."""
        return _chosen(await self._prefs.find_one({"_id": user_id}))

    async def update(self, user_id: str, categories: dict[str, CategoryChoice], quiet_hours: QuietHours | None,
                     set_quiet_hours: bool) -> ChosenPreferences:
        """Change only what was given (per category and per switch); quiet hours replaced or removed."""
        changes: Doc = {"updatedAt": utcnow()}
        for name, choice in categories.items():
            for attribute, stored in _STORED_SWITCH.items():
                value = getattr(choice, attribute)
                if value is not None:
                    changes[f"categories.{name}.{stored}"] = value
        if set_quiet_hours:
            changes["quietHours"] = vars(quiet_hours) if quiet_hours else None
        await self._prefs.update_one({"_id": user_id}, {"$set": changes}, upsert=True)
        return await self.get(user_id)
