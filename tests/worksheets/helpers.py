"""Shared steps of the worksheet tests: a therapist and a client who know each other, a worksheet, an assignment,
and a pycrdt editor that speaks the /worksheets document protocol."""
from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Map, Text

from tests.clients import SioClient
from tests.conftest import RunningServer

NS = "/worksheets"
FIELDS = [
    {"id": "story", "type": "text", "label": "What happened?", "required": True},
    {"id": "mood", "type": "choice", "label": "Mood", "options": ["low", "ok", "good"], "required": True},
    {"id": "tags", "type": "multi", "label": "Tags", "options": ["sleep", "work", "family"]},
    {"id": "energy", "type": "scale", "label": "Energy", "min": 1, "max": 5},
    {"id": "done", "type": "checkbox", "label": "I tried the exercise"},
]
_ids = itertools.count(1)


def rid() -> str:
    """A fresh requestId."""
    return f"r{next(_ids)}"


def b64(data: bytes) -> str:
    """Bytes as base64 text."""
    return base64.b64encode(data).decode()


async def acquaint(server: RunningServer, therapist: str = "t1", client: str = "c1") -> None:
    """Give a therapist and a client a conversation (what lets the therapist assign them worksheets)."""
    other = await server.client(client, "client", "/chat")  # a user is known once they have connected
    chat = await server.client(therapist, "therapist", "/chat")
    await chat.ok("conversation:open", {"memberIds": [client]})
    for each in (chat, other):
        await each.disconnect()


async def create_worksheet(therapist: SioClient, **overrides: Any) -> dict[str, Any]:
    """A worksheet with the five field types (overridable)."""
    payload = {"title": "Weekly check-in", "fields": FIELDS, "requestId": rid(), **overrides}
    return await therapist.ok("worksheet:create", payload)  # type: ignore[no-any-return]


@dataclass
class Pair:
    """A connected therapist and client who know each other, one worksheet and its assignment."""

    therapist: SioClient
    client: SioClient
    worksheet: dict[str, Any]
    assignment: dict[str, Any]

    @property
    def assignment_id(self) -> str:
        """The assignment's id."""
        return str(self.assignment["id"])


async def assigned(server: RunningServer, therapist: str = "t1", client: str = "c1", due_at: str | None = None,
                   **worksheet: Any) -> Pair:
    """The usual arrangement: t1 and c1 acquainted and connected, a worksheet assigned to c1."""
    await acquaint(server, therapist, client)
    t = await server.client(therapist, "therapist", NS)
    c = await server.client(client, "client", NS)
    sheet = await create_worksheet(t, **worksheet)
    payload: dict[str, Any] = {"worksheetId": sheet["id"], "clientId": client, "requestId": rid()}
    if due_at is not None:
        payload["dueAt"] = due_at
    return Pair(t, c, sheet, await t.ok("worksheet:assign", payload))


@dataclass
class YEditor:
    """A pycrdt document kept in sync with the server over one socket (as a Yjs provider would)."""

    socket: SioClient
    assignment_id: str
    doc: Doc = field(default_factory=Doc)

    @property
    def responses(self) -> Map:
        """The responses map."""
        return self.doc.get("responses", type=Map)

    async def open(self) -> dict[str, Any]:
        """assignment:open and apply the whole document."""
        opened = await self.socket.ok("assignment:open", {"assignmentId": self.assignment_id})
        self.doc.apply_update(base64.b64decode(opened["update"]))
        return opened  # type: ignore[no-any-return]

    def receive(self) -> int:
        """Apply every `doc:updated` received so far; returns how many."""
        pushed = self.socket.events.pop("doc:updated", [])
        for data in pushed:
            assert data["assignmentId"] == self.assignment_id
            self.doc.apply_update(base64.b64decode(data["update"]))
        return len(pushed)

    def change(self, edit: Any) -> bytes:
        """Run `edit(responses)` locally; the update it made."""
        before = self.doc.get_state()
        with self.doc.transaction():
            edit(self.responses)
        return self.doc.get_update(before)

    async def send(self, update: bytes) -> dict[str, Any]:
        """doc:update; the ack."""
        return await self.socket.call("doc:update", {"assignmentId": self.assignment_id,  # type: ignore[no-any-return]
                                                     "update": b64(update)})

    async def edit(self, edit: Any) -> dict[str, Any]:
        """Change locally and send; the ack."""
        return await self.send(self.change(edit))

    def text(self, field_id: str) -> Text:
        """The shared text of a text field."""
        value = self.responses[field_id]
        assert isinstance(value, Text)
        return value

    def json(self) -> dict[str, Any]:
        """The responses as plain values."""
        return self.responses.to_py() or {}
