"""The one place a server event's payload becomes its wire object: the schema its namespace declares."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import Schema

from realtime.base import BaseNamespace


class WireFormat:
    """Output schemas of every server event, by (namespace, event)."""

    def __init__(self, namespaces: Iterable[type[BaseNamespace]]) -> None:
        self._dumpers: dict[tuple[str, str], Schema] = {
            (namespace.path, event): schema()
            for namespace in namespaces for event, schema in namespace.all_emits.items()
        }

    def dump(self, namespace: str, event: str, payload: Any) -> Any:
        """The wire object of `payload` as `event` on `namespace` (KeyError for an undeclared event)."""
        return self._dumpers[(namespace, event)].dump(payload)
