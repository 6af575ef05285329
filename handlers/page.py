"""One page of a cursor-paginated list (CONTRACT §1: `{items, nextCursor}`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one page, and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None
