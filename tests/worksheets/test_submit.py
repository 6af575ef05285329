"""Submission: PHQ-9 and GAD-7 scored at every band boundary, the critical safety alert (even in quiet hours and
opted out), notifications of the lifecycle, feedback and clarification threads (encrypted at rest)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from rest.app_keys import MONGO_DB
from tests.booking.helpers import fix_clock
from tests.clients import SioClient
from tests.conftest import RunningServer
from tests.worksheets.helpers import NS, acquaint, rid

PHQ9_BANDS = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
              (15, "moderately severe"), (19, "moderately severe"), (20, "severe"), (27, "severe")]
GAD7_BANDS = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
              (15, "severe"), (21, "severe")]
LATE_NIGHT = datetime(2026, 11, 20, 23, 30, tzinfo=timezone.utc)


def answers(instrument: str, items: int, total: int, last_first: bool = False) -> dict[str, int]:
    """Item answers (0-3) adding up to `total`, filled from item 1 (from the last item when `last_first`)."""
    order = list(range(items, 0, -1)) if last_first else list(range(1, items + 1))
    values, left = {}, total
    for number in order:
        values[f"{instrument}_{number}"] = min(3, left)
        left -= values[f"{instrument}_{number}"]
    assert left == 0
    return values


async def instrument_pair(server: RunningServer, instrument: str) -> tuple[SioClient, SioClient, dict[str, Any]]:
    await acquaint(server)
    therapist = await server.client("t1", "therapist", NS)
    client = await server.client("c1", "client", NS)
    sheet = await therapist.ok("worksheet:create", {"instrument": instrument, "requestId": rid()})
    return therapist, client, sheet


async def submit(therapist: SioClient, client: SioClient, sheet: dict[str, Any],
                 responses: dict[str, Any]) -> dict[str, Any]:
    assignment = await therapist.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                                         "requestId": rid()})
    await client.ok("draft:save", {"assignmentId": assignment["id"], "responses": responses})
    return await client.ok("assignment:submit", {"assignmentId": assignment["id"]})  # type: ignore[no-any-return]


async def notifications_of(server: RunningServer, user_id: str) -> list[dict[str, Any]]:
    cursor = server.app[MONGO_DB]["notifications"].find({"userId": user_id}).sort("seq", 1)
    return [doc async for doc in cursor]


@pytest.mark.parametrize(("instrument", "items", "bands"), [("phq9", 9, PHQ9_BANDS), ("gad7", 7, GAD7_BANDS)])
async def test_instruments_score_at_every_band_boundary(server: RunningServer, instrument: str, items: int,
                                                        bands: list[tuple[int, str]]) -> None:
    therapist, client, sheet = await instrument_pair(server, instrument)
    assert [f["id"] for f in sheet["fields"]] == [f"{instrument}_{n}" for n in range(1, items + 1)]
    assert all(f["type"] == "scale" and f["min"] == 0 and f["max"] == 3 and f["required"] for f in sheet["fields"])
    assert sheet["fields"][0]["options"] == ["Not at all", "Several days", "More than half the days",
                                             "Nearly every day"]
    for total, band in bands:
        done = await submit(therapist, client, sheet, answers(instrument, items, total))
        assert done["score"] == {"instrument": instrument, "total": total, "max": items * 3, "severity": band}
        assert done["status"] == "submitted"


async def test_an_instrument_answer_outside_its_scale_is_refused(server: RunningServer) -> None:
    therapist, client, sheet = await instrument_pair(server, "gad7")
    assignment = await therapist.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                                         "requestId": rid()})
    ack = await client.call("draft:save", {"assignmentId": assignment["id"], "responses": {"gad7_1": 4}})
    assert ack["error"]["code"] == "invalid_payload" and "gad7_1" in ack["error"]["details"]["responses"]


async def test_phq9_item_9_alerts_the_therapist_critically_even_in_quiet_hours(server: RunningServer) -> None:
    fix_clock(server, now=LATE_NIGHT)
    therapist, client, sheet = await instrument_pair(server, "phq9")
    inbox = await server.client("t1", "therapist", "/notifications")
    await inbox.ok("preferences:set", {"categories": {"worksheet": {"inApp": False, "push": False}},
                                       "quietHours": {"start": "22:00", "end": "07:00", "timezone": "UTC"}})
    done = await submit(therapist, client, sheet, answers("phq9", 9, 1, last_first=True))  # only item 9, = 1
    assert done["status"] == "submitted" and done["score"]["total"] == 1  # the client is not held up
    alert = await inbox.expect("notification:created", lambda n: n["critical"])
    assert alert["category"] == "worksheet" and alert["data"] == {"assignmentId": done["id"]}
    for text in (alert["title"], alert["body"]):
        assert "1" not in text and "PHQ" not in text and "dead" not in text.lower()
    await server.shared.bus.drain()
    stored = await notifications_of(server, "t1")
    critical = [n for n in stored if n["critical"]]
    assert len(critical) == 1 and critical[0]["readAt"] is None
    ordinary = [n for n in stored if not n["critical"]]
    assert [n["title"] for n in ordinary] == ["Worksheet submitted"] and ordinary[0]["readAt"] is not None


async def test_no_alert_without_item_9(server: RunningServer) -> None:
    therapist, client, sheet = await instrument_pair(server, "phq9")
    await submit(therapist, client, sheet, answers("phq9", 9, 24))  # item 9 still 0
    await server.shared.bus.drain()
    assert not [n for n in await notifications_of(server, "t1") if n["critical"]]


async def test_feedback_and_clarification_threads(server: RunningServer) -> None:
    therapist, client, sheet = await instrument_pair(server, "gad7")
    assignment = await therapist.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                                         "requestId": rid()})
    ref = {"assignmentId": assignment["id"]}
    asked = await client.ok("assignment:clarify", {**ref, "question": "What counts as restless?",
                                                   "fieldId": "gad7_5"})
    assert asked["clarifications"][0]["text"] == "What counts as restless?"
    assert asked["clarifications"][0]["fieldId"] == "gad7_5" and asked["clarifications"][0]["authorId"] == "c1"
    await therapist.expect("assignment:updated", lambda a: len(a["clarifications"]) == 1)
    await client.error("assignment:clarify", {**ref, "question": "?", "fieldId": "nope"}, code="invalid_payload")
    await client.error("assignment:feedback", {**ref, "text": "x"}, code="forbidden")
    await therapist.error("assignment:clarify", {**ref, "question": "x"}, code="forbidden")
    await therapist.ok("assignment:feedback", {**ref, "text": "Early thoughts"})  # before submission: stays open
    assert (await client.ok("assignment:get", ref))["status"] == "assigned"
    await client.ok("draft:save", {**ref, "responses": answers("gad7", 7, 3)})
    await client.ok("assignment:submit", ref)
    reviewed = await therapist.ok("assignment:feedback", {**ref, "text": "Thank you, well done", "fieldId": "gad7_1"})
    assert reviewed["status"] == "reviewed"
    assert [f["text"] for f in reviewed["feedback"]] == ["Early thoughts", "Thank you, well done"]
    pushed = await client.expect("assignment:updated", lambda a: a["status"] == "reviewed")
    assert pushed["feedback"][1]["fieldId"] == "gad7_1"
    raw = await server.app[MONGO_DB]["worksheet_assignments"].find_one({"_id": assignment["id"]})
    assert raw is not None
    for secret in (b"Thank you", b"restless", b"gad7_1\":"):
        assert secret not in repr(raw).encode()  # texts and frozen responses only as ciphertext
    await server.shared.bus.drain()
    titles = {user: [n["title"] for n in await notifications_of(server, user)] for user in ("t1", "c1")}
    assert titles["c1"] == ["New worksheet", "Feedback on your worksheet", "Feedback on your worksheet"]
    assert titles["t1"] == ["Question about a worksheet", "Worksheet submitted"]
