"""Matrix rows of /worksheets: the party's worksheet, assigned to the owner (its client).

The party (a therapist) knows the owner through a conversation, owns a worksheet and assigns it to the owner.
A world grows in steps: `worksheet` (created, not yet assigned), `assignment` (assigned to the owner),
`answered` (the owner has answered every required field, so it can be submitted). Strangers, another client
and another therapist never learn that a worksheet or assignment exists (`not_found`); admins are strangers
to it too (an assignment is health data). Therapist-only requests are `forbidden` to clients and admins,
client-only ones (submit, clarify) to therapists and admins: the role is checked before the id.
"""
from __future__ import annotations

import base64
from typing import Any

from pycrdt import Doc, Map

from tests.hostile.matrix import FB, NF, OK, Maker, Row, World, codes, row
from tests.worksheets.helpers import FIELDS

NS = "/worksheets"

PARTIES = codes(OK, OK, NF, NF, NF)            # the assigned client and the assigning therapist
THERAPIST_OF = codes(FB, OK, FB, NF, FB)       # the owning (assigning) therapist only
CLIENT_OF = codes(OK, FB, NF, FB, FB)          # the assigned client only


async def make_worksheet(world: World) -> None:
    """The party knows the owner (a conversation) and owns a worksheet with the five field types."""
    chat = await world.client("party", "/chat")
    await chat.ok("conversation:open", {"memberIds": [world.user("owner")]})
    party = await world.client("party", NS)
    sheet = await party.ok("worksheet:create", {"title": "Weekly check-in", "fields": FIELDS, "requestId": "w"})
    world.ids["worksheet"] = sheet["id"]


async def make_assignment(world: World) -> None:
    if "worksheet" not in world.ids:
        await make_worksheet(world)
    party = await world.client("party", NS)
    assignment = await party.ok("worksheet:assign", {"worksheetId": world.ids["worksheet"],
                                                     "clientId": world.user("owner"), "requestId": "a"})
    world.ids["assignment"] = assignment["id"]


async def make_answered(world: World) -> None:
    """The owner has answered the required fields (what submitting needs)."""
    if "assignment" not in world.ids:
        await make_assignment(world)
    owner = await world.client("owner", NS)
    await owner.ok("draft:save", {"assignmentId": world.ids["assignment"],
                                  "responses": {"story": "It went fine", "mood": "ok"}})
    world.ids["answered"] = world.ids["assignment"]


async def make_submitted(world: World) -> None:
    """The owner has submitted the assignment (what an export needs)."""
    if "answered" not in world.ids:
        await make_answered(world)
    owner = await world.client("owner", NS)
    await owner.ok("assignment:submit", {"assignmentId": world.ids["assignment"]})
    world.ids["submitted"] = world.ids["assignment"]


MAKERS: dict[str, Maker] = {"worksheet": make_worksheet, "assignment": make_assignment, "answered": make_answered,
                            "submitted": make_submitted}


def worksheet(w: World) -> dict[str, Any]:
    return {"worksheetId": w.ids["worksheet"]}


def assignment(w: World) -> dict[str, Any]:
    return {"assignmentId": w.ids["assignment"]}


def ticked() -> str:
    """A Yjs update (made by an editor of its own) ticking the checkbox field."""
    doc: Doc = Doc()
    doc.get("responses", type=Map)["done"] = True
    return base64.b64encode(doc.get_update()).decode()


EMPTY_STATE_VECTOR = base64.b64encode(Doc().get_state()).decode()


async def assigned_to_the_owner(w: World, relation: str, answer: dict[str, Any]) -> None:
    assert answer["clientId"] == w.user("owner") and answer["therapistId"] == w.user("party"), answer


async def ticked_in_the_document(w: World, relation: str, answer: dict[str, Any]) -> None:
    """The write landed in the assignment's document (as both parties see it)."""
    owner = await w.client("owner", NS)
    opened = await owner.ok("assignment:open", assignment(w))
    doc: Doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    assert doc.get("responses", type=Map).get("done") is True, relation


ROWS: dict[tuple[str, str], Row] = {
    ("/worksheets", "worksheet:get"): row("assignment", worksheet, PARTIES),  # the owner sees what was assigned
    ("/worksheets", "worksheet:archive"): row("worksheet", worksheet, THERAPIST_OF),
    ("/worksheets", "worksheet:analytics"): row("assignment", worksheet, THERAPIST_OF),
    ("/worksheets", "worksheet:assign"): row("worksheet", lambda w: {**worksheet(w), "clientId": w.user("owner"),
                                                                     "requestId": "x"},
                                             THERAPIST_OF, assigned_to_the_owner),
    ("/worksheets", "assignment:get"): row("assignment", assignment, PARTIES),
    ("/worksheets", "assignment:open"): row("assignment", assignment, PARTIES),
    ("/worksheets", "doc:sync"): row("assignment", lambda w: {**assignment(w), "stateVector": EMPTY_STATE_VECTOR},
                                     PARTIES),
    ("/worksheets", "doc:update"): row("assignment", lambda w: {**assignment(w), "update": ticked()}, PARTIES,
                                       ticked_in_the_document),
    ("/worksheets", "awareness:update"): row("assignment", lambda w: {**assignment(w), "state": {"cursor": 1}},
                                             PARTIES),
    ("/worksheets", "draft:save"): row("assignment", lambda w: {**assignment(w), "responses": {"done": True}},
                                       PARTIES, ticked_in_the_document),
    ("/worksheets", "assignment:submit"): row("answered", assignment, CLIENT_OF),
    ("/worksheets", "assignment:export"): row("submitted", assignment, PARTIES),
    ("/worksheets", "assignment:feedback"): row("assignment", lambda w: {**assignment(w), "text": "Well done"},
                                                THERAPIST_OF),
    ("/worksheets", "assignment:clarify"): row("assignment", lambda w: {**assignment(w), "question": "What?"},
                                               CLIENT_OF),
}
