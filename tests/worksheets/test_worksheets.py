"""Worksheets and assignments: create (validated, idempotent), instruments, list, get, archive, assign only to
known clients, and each side's assignment list."""
from __future__ import annotations

from datetime import timedelta

from clock import iso
from rest.app_keys import MONGO_DB
from tests.booking.helpers import book, fix_clock
from tests.booking.helpers import therapist as bookable_therapist
from tests.conftest import RunningServer
from tests.conftest import test_now as now_
from tests.worksheets.helpers import FIELDS, NS, acquaint, assigned, create_worksheet, rid


async def test_create_validates_fields(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    bad = [
        {"title": "x", "fields": []},
        {"title": "x", "fields": [{"id": "a", "type": "choice", "label": "A"}]},
        {"title": "x", "fields": [{"id": "a", "type": "multi", "label": "A", "options": ["o", "o"]}]},
        {"title": "x", "fields": [{"id": "a", "type": "scale", "label": "A"}]},
        {"title": "x", "fields": [{"id": "a", "type": "scale", "label": "A", "min": 5, "max": 1}]},
        {"title": "x", "fields": [{"id": "a", "type": "text", "label": "A", "options": ["o"]}]},
        {"title": "x", "fields": [{"id": "a", "type": "text", "label": "A", "min": 1}]},
        {"title": "x", "fields": [{"id": "a", "type": "date", "label": "A"}]},
        {"title": "x", "fields": [{"id": "a", "type": "text", "label": "A"}, {"id": "a", "type": "text",
                                                                            "label": "B"}]},
        {"title": "x", "fields": [{"id": "bad id!", "type": "text", "label": "A"}]},
        {"fields": [{"id": "a", "type": "text", "label": "A"}]},
        {"instrument": "phq9", "fields": [{"id": "a", "type": "text", "label": "A"}]},
        {"instrument": "bdi"},
        {"title": "x", "fields": FIELDS, "extra": 1},
    ]
    for payload in bad:
        await t.error("worksheet:create", {**payload, "requestId": rid()}, code="invalid_payload")
    client = await server.client("c1", "client", NS)
    await client.error("worksheet:create", {"title": "x", "fields": FIELDS, "requestId": rid()}, code="forbidden")
    assert await server.app[MONGO_DB]["worksheets"].count_documents({}) == 0


async def test_create_is_idempotent_by_request_id(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    first = await create_worksheet(t, requestId="same")
    assert first["title"] == "Weekly check-in" and [f["id"] for f in first["fields"]] == [f["id"] for f in FIELDS]
    assert first["fields"][1]["options"] == ["low", "ok", "good"] and "options" not in first["fields"][0]
    assert await create_worksheet(t, requestId="same") == first
    await t.error("worksheet:create", {"title": "Other", "fields": FIELDS, "requestId": "same"}, code="conflict")
    assert await server.app[MONGO_DB]["worksheets"].count_documents({}) == 1


async def test_instruments_come_with_their_items(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    phq = await t.ok("worksheet:create", {"instrument": "phq9", "requestId": rid()})
    assert phq["title"] == "PHQ-9" and phq["instrument"] == "phq9" and len(phq["fields"]) == 9
    assert phq["fields"][8]["label"].startswith("Thoughts that you would be better off dead")
    gad = await t.ok("worksheet:create", {"instrument": "gad7", "title": "Anxiety check", "requestId": rid()})
    assert gad["title"] == "Anxiety check" and len(gad["fields"]) == 7


async def test_list_get_and_archive_are_the_owners(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    sheets = [await create_worksheet(t, title=f"Sheet {n}") for n in range(3)]
    page = await t.ok("worksheet:list", {"limit": 2})
    assert [s["id"] for s in page["items"]] == [sheets[2]["id"], sheets[1]["id"]] and page["nextCursor"]
    rest = await t.ok("worksheet:list", {"limit": 2, "cursor": page["nextCursor"]})
    assert [s["id"] for s in rest["items"]] == [sheets[0]["id"]] and rest["nextCursor"] is None
    assert await t.ok("worksheet:get", {"worksheetId": sheets[0]["id"]}) == sheets[0]
    archived = await t.ok("worksheet:archive", {"worksheetId": sheets[0]["id"]})
    assert archived["archivedAt"] is not None
    assert [s["id"] for s in (await t.ok("worksheet:list", {}))["items"]] == [sheets[2]["id"], sheets[1]["id"]]
    assert len((await t.ok("worksheet:list", {"includeArchived": True}))["items"]) == 3
    other = await server.client("t2", "therapist", NS)
    assert (await other.ok("worksheet:list", {}))["items"] == []
    await other.error("worksheet:get", {"worksheetId": sheets[1]["id"]}, code="not_found")
    await acquaint(server)
    await t.error("worksheet:assign", {"worksheetId": sheets[0]["id"], "clientId": "c1", "requestId": rid()},
                  code="precondition_failed")


async def test_assign_only_to_a_client_with_a_booking_or_conversation(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    sheet = await create_worksheet(t)
    await server.client("c9", "client", NS)
    for client_id in ("c9", "t1", "nobody"):
        await t.error("worksheet:assign", {"worksheetId": sheet["id"], "clientId": client_id, "requestId": rid()},
                      code="forbidden")
    assert await server.app[MONGO_DB]["worksheet_assignments"].count_documents({}) == 0
    # a booking, in any status (here still pending), is enough
    fix_clock(server, now=now_())
    await bookable_therapist(server, "t1")
    booker = await server.client("c5", "client", "/booking")
    await book(booker, "t1", (now_() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0))
    made = await t.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c5", "requestId": rid()})
    assert made["clientId"] == "c5" and made["status"] == "assigned" and made["progress"] == 0


async def test_assign_is_idempotent_and_notifies_the_client(server: RunningServer) -> None:
    await acquaint(server)
    t = await server.client("t1", "therapist", NS)
    c = await server.client("c1", "client", NS)
    sheet = await create_worksheet(t)
    due = iso(now_() + timedelta(days=3))
    payload = {"worksheetId": sheet["id"], "clientId": "c1", "dueAt": due, "requestId": "a1"}
    first = await t.ok("worksheet:assign", payload)
    assert first["dueAt"] == due and first["therapistId"] == "t1" and first["responses"] is None
    assert first["feedback"] == [] and first["clarifications"] == [] and first["score"] is None
    assert await t.ok("worksheet:assign", payload) == first
    await t.error("worksheet:assign", {**payload, "dueAt": iso(now_() + timedelta(days=4))}, code="conflict")
    pushed = await c.expect("assignment:updated")
    assert pushed["id"] == first["id"]
    await t.error("worksheet:assign", {**payload, "requestId": "a2", "dueAt": iso(now_() - timedelta(hours=1))},
                  code="invalid_payload")
    assert await c.ok("worksheet:get", {"worksheetId": sheet["id"]}) == sheet  # the client may read what to fill
    await server.shared.bus.drain()
    notes = [n async for n in server.app[MONGO_DB]["notifications"].find({"userId": "c1"})]
    assert [n["title"] for n in notes] == ["New worksheet"] and notes[0]["data"] == {"assignmentId": first["id"]}


async def test_each_side_lists_its_assignments_by_status(server: RunningServer) -> None:
    pair = await assigned(server)
    second = await pair.therapist.ok("worksheet:assign", {"worksheetId": pair.worksheet["id"], "clientId": "c1",
                                                          "requestId": rid()})
    await pair.client.ok("draft:save", {"assignmentId": second["id"], "responses": {"mood": "ok"}})
    for side in (pair.client, pair.therapist):
        everything = await side.ok("assignment:list", {})
        assert [a["id"] for a in everything["items"]] == [second["id"], pair.assignment_id]
        started = await side.ok("assignment:list", {"status": "in_progress"})
        assert [a["id"] for a in started["items"]] == [second["id"]]
        page = await side.ok("assignment:list", {"limit": 1})
        more = await side.ok("assignment:list", {"limit": 1, "cursor": page["nextCursor"]})
        assert [a["id"] for a in more["items"]] == [pair.assignment_id] and more["nextCursor"] is None
    await pair.client.error("assignment:list", {"status": "done"}, code="invalid_payload")
    other = await server.client("c2", "client", NS)
    assert (await other.ok("assignment:list", {}))["items"] == []


async def test_lookup_names_the_therapist_for_the_assigned_client_and_nobody_for_a_stranger(
        server: RunningServer) -> None:
    pair = await assigned(server)
    other = await assigned(server, therapist="t2", client="c3")  # an assignment of other people
    # the conversation that let t1 assign is gone: the assignment alone relates them now
    await server.app[MONGO_DB]["chat_conversations"].delete_many({})
    stranger = await server.client("c2", "client", NS)

    named = await pair.client.ok("user:lookup", {"ids": ["t1", "t2", "c2"]})
    assert [(p["id"], p["role"]) for p in named["items"]] == [("t1", "therapist")]
    assert [p["id"] for p in (await pair.therapist.ok("user:lookup", {"ids": ["c1", "c2", "c3"]}))["items"]] == ["c1"]
    assert [p["id"] for p in (await other.therapist.ok("user:lookup", {"ids": ["c1", "c3"]}))["items"]] == ["c3"]
    assert (await stranger.ok("user:lookup", {"ids": ["t1", "c1"]}))["items"] == []
