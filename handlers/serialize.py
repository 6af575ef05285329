"""camelCase names (left for the handlers that still build wire dicts)."""
from __future__ import annotations


def camel(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
