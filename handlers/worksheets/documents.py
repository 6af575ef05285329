"""Yjs documents in memory (pycrdt): one per assignment, loaded from the store and kept convergent.

A document holds one root map, `responses`, keyed by field id. Text fields start as a shared Y.Text so that
concurrent editors type into the same text instead of replacing each other's.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pycrdt import Array, Doc, Map, Text, merge_updates

from handlers.worksheets.responses import MAX_TEXT, FittingText, SharedText, Unsupported
from stores.worksheets.worksheets import Field

log = logging.getLogger("careline.worksheets")

ROOT = "responses"


class BadUpdate(Exception):
    """Not a Yjs update, or one that touches more than the `responses` map."""


BEHIND_AT_MOST = 256  # stored updates the durable copy may lag behind before they are applied anyway


def _value(item: Any, to_check: bool = False) -> Any:
    if isinstance(item, Text):
        # pycrdt's length counts UTF-8 bytes, never fewer than characters: a text within the limit by it fits
        # without being read (reading a much-edited text walks all its pieces: ~30 µs for 400 characters)
        return FittingText() if to_check and len(item) <= MAX_TEXT else SharedText(str(item))
    if isinstance(item, Array):
        return [_value(each, to_check) for each in item]
    if isinstance(item, Map):
        return Unsupported()
    return item


def new_document(fields: Iterable[Field]) -> Doc:
    """A fresh document: the responses map with an empty shared text per text field."""
    doc: Doc = Doc()
    responses = doc.get(ROOT, type=Map)
    with doc.transaction():
        for field in fields:
            if field.type == "text":
                responses[field.id] = Text()
    return doc


def responses_of(doc: Doc, to_check: bool = False) -> dict[str, Any]:
    """The answers in a document (shared texts as SharedText, nested maps Unsupported); BadUpdate if the
    document has another root than `responses` or that root is not a map. `to_check`: only to check them
    (a text that fits by its length alone is a FittingText, its content not read)."""
    if set(doc.keys()) - {ROOT}:
        raise BadUpdate("Only the responses map may be written.")
    try:
        responses = doc.get(ROOT, type=Map)
        return {key: _value(value, to_check) for key, value in responses.items()}
    except Exception as error:
        raise BadUpdate("The responses root must be a map.") from error


def copy_of(doc: Doc) -> Doc:
    """An independent copy (to try an update on)."""
    copy: Doc = Doc()
    copy.apply_update(doc.get_update())
    return copy


def apply(doc: Doc, update: bytes) -> None:
    """Apply a Yjs update; BadUpdate when it cannot be decoded."""
    try:
        doc.apply_update(update)
    except Exception as error:
        raise BadUpdate("Not a valid Yjs update.") from error


def set_answers(doc: Doc, fields: dict[str, Field], answers: dict[str, Any]) -> None:
    """Write plain values into the responses map in one transaction (text replaced inside its shared text)."""
    responses = doc.get(ROOT, type=Map)
    with doc.transaction():
        for field_id, value in answers.items():
            field = fields.get(field_id)
            current = responses.get(field_id) if field_id in responses else None
            if value is None:
                if isinstance(current, Text):
                    current.clear()  # a text stays the same shared text: Yjs editors stay bound to it
                elif field_id in responses:
                    del responses[field_id]
            elif field is not None and field.type == "text" and isinstance(value, str):
                if isinstance(current, Text):
                    if str(current) != value:
                        current.clear()
                        current += value
                else:
                    responses[field_id] = Text(value)
            else:
                responses[field_id] = value


class LiveDocument:
    """One assignment's document in this process; `ready` is set once the stored state is merged in.

    A write is tried on `shadow`, a second copy that holds the document plus the writes still being stored:
    applying it there and reading the answers costs what the update costs, not what the whole document does,
    and needs no lock (trying is synchronous). `doc` is the durable copy (stored writes only: what opening and
    syncing hand out); the stored writes are applied to it when it is read, merged into one update (a few µs
    each instead of ~15 µs each one by one). A refused or unstored write leaves `shadow` ahead, and `reject`
    rebuilds it from `doc` and the writes still in flight (refusals are rare).
    """

    def __init__(self, assignment_id: str) -> None:
        self.assignment_id = assignment_id
        self._doc: Doc = Doc()
        self._behind: list[bytes] = []  # stored, not yet applied to `_doc`
        self.shadow: Doc = Doc()
        self.ready = asyncio.Event()
        self.loaded = False  # ready, and the stored state was read (False after a failed load)
        self.in_flight: dict[int, bytes] = {}  # tried and being stored
        self._next = 0

    @property
    def doc(self) -> Doc:
        """The durable copy, with every stored write applied."""
        if self._behind:
            behind, self._behind = self._behind, []
            try:
                self._doc.apply_update(merge_updates(*behind) if len(behind) > 1 else behind[0])
            except Exception:  # one of them is broken: the others one by one
                for update in behind:
                    self._apply_durable(update)
        return self._doc

    def _apply_durable(self, update: bytes) -> None:
        try:
            self._doc.apply_update(update)
        except Exception:
            log.warning("a stored update of %s could not be applied", self.assignment_id)

    def _stored(self, update: bytes) -> None:
        self._behind.append(update)
        if len(self._behind) >= BEHIND_AT_MOST:
            self.doc  # noqa: B018 - applies them

    def apply_stored(self, updates: Iterable[bytes]) -> None:
        """Merge stored or relayed state into both copies (repeats are no-ops)."""
        for update in updates:
            try:
                self.shadow.apply_update(update)
            except Exception:
                log.warning("a stored update of %s could not be applied", self.assignment_id)
                continue
            self._stored(update)

    def storing(self, update: bytes) -> int:
        """A tried write goes to the store; its ticket."""
        self._next += 1
        self.in_flight[self._next] = update
        return self._next

    def stored(self, ticket: int) -> None:
        """The write is durable: the document takes it too."""
        self._stored(self.in_flight.pop(ticket))

    def reject(self, ticket: int | None = None) -> None:
        """The tried write was refused (or could not be stored): the shadow goes back to the document plus the
        other writes still being stored."""
        if ticket is not None:
            self.in_flight.pop(ticket, None)
        self.shadow = copy_of(self.doc)
        for update in self.in_flight.values():
            self.shadow.apply_update(update)


class DocumentCache:
    """The documents this process holds, least recently used dropped first (they reload from the store)."""

    def __init__(self, capacity: int) -> None:
        self._docs: OrderedDict[str, LiveDocument] = OrderedDict()
        self._capacity = capacity

    def get(self, assignment_id: str) -> LiveDocument | None:
        """The held document, if any."""
        live = self._docs.get(assignment_id)
        if live is not None:
            self._docs.move_to_end(assignment_id)
        return live

    def add(self, assignment_id: str) -> LiveDocument:
        """Hold a new (empty, not yet ready) document."""
        live = LiveDocument(assignment_id)
        self._docs[assignment_id] = live
        while len(self._docs) > self._capacity:
            self._docs.popitem(last=False)
        return live

    def drop(self, assignment_id: str) -> None:
        """Forget a document (it reloads on next use)."""
        self._docs.pop(assignment_id, None)
