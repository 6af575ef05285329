"""The categories a notification belongs to (CONTRACT §6)."""
from __future__ import annotations

CATEGORIES = ("booking", "message", "worksheet", "billing", "meeting", "system")
