"""One page of a cursor-paginated list (CONTRACT §1: `{items, nextCursor}`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from clock import iso, parse_iso
from errors import InvalidPayload

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one page, and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def time_cursor(moment: datetime, item_id: str) -> str:
    """The cursor after an item of a list ordered by (time, id): `<ISO time>|<id>`."""
    return f"{iso(moment)}|{item_id}"


def read_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) a `time_cursor` names; None for the first page, `invalid_payload` for anything else."""
    if not cursor:
        return None
    moment, _, item_id = cursor.partition("|")
    try:
        return parse_iso(moment), item_id
    except ValueError:
        raise InvalidPayload("Bad cursor", {"cursor": ["Not a cursor from this list."]}) from None
