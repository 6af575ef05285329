"""The `notification_prefs` collection: per-user category switches and quiet hours."""
from __future__ import annotations

from typing import Any

from clock import utcnow
from stores.mongo import Database, Doc


class PreferenceStore:
    """Named queries on notification_prefs (keyed by user id)."""

    def __init__(self, db: Database) -> None:
        self._prefs = db["notification_prefs"]

    async def ensure_indexes(self) -> None:
        """Keyed by _id: nothing else to index."""

    async def get(self, user_id: str) -> Doc:
        """What the user chose: `{categories: {name: {inApp?, push?}}, quietHours}` (empty when nothing)."""
        doc = await self._prefs.find_one({"_id": user_id})
        return {"categories": doc.get("categories") or {}, "quietHours": doc.get("quietHours")} if doc else {}

    async def update(self, user_id: str, categories: dict[str, dict[str, Any]],
                     quiet_hours: dict[str, str] | None, set_quiet_hours: bool) -> Doc:
        """Change only what was given (per category and per switch); quiet hours replaced or removed."""
        changes: Doc = {"updatedAt": utcnow()}
        for name, values in categories.items():
            for key, value in values.items():
                changes[f"categories.{name}.{key}"] = value
        if set_quiet_hours:
            changes["quietHours"] = quiet_hours
        await self._prefs.update_one({"_id": user_id}, {"$set": changes}, upsert=True)
        return await self.get(user_id)
