"""worksheet:analytics: counts by status, on-time rate, median time to submission, and each client's score
series, for the owning therapist only."""
from __future__ import annotations

from datetime import timedelta

from clock import iso
from tests.booking.helpers import at, fix_clock
from tests.clients import SioClient
from tests.conftest import RunningServer
from tests.worksheets.helpers import NS, acquaint, rid

NOW = at("2026-05-04T08:00")


def phq(total: int) -> dict[str, int]:
    values, left = {}, total
    for number in range(1, 10):
        values[f"phq9_{number}"] = min(3, left)
        left -= values[f"phq9_{number}"]
    return values


async def test_analytics_of_an_instrument(server: RunningServer) -> None:
    clock = fix_clock(server, now=NOW)
    for client in ("c1", "c2"):
        await acquaint(server, "t1", client)
    t = await server.client("t1", "therapist", NS)
    clients = {sub: await server.client(sub, "client", NS) for sub in ("c1", "c2")}
    sheet = await t.ok("worksheet:create", {"instrument": "phq9", "requestId": rid()})

    async def assign(sub: str, due_hours: int | None = 48) -> str:
        payload = {"worksheetId": sheet["id"], "clientId": sub, "requestId": rid()}
        if due_hours is not None:
            payload["dueAt"] = iso(clock[0] + timedelta(hours=due_hours))
        return str((await t.ok("worksheet:assign", payload))["id"])

    async def fill(client: SioClient, assignment_id: str, total: int, after_hours: int) -> None:
        clock[0] += timedelta(hours=after_hours)
        await client.ok("draft:save", {"assignmentId": assignment_id, "responses": phq(total)})
        await client.ok("assignment:submit", {"assignmentId": assignment_id})

    first = await assign("c1")
    await fill(clients["c1"], first, 18, after_hours=10)          # on time, 10 h
    second = await assign("c1")
    await fill(clients["c1"], second, 12, after_hours=60)         # late, 60 h
    third = await assign("c2", due_hours=None)
    await fill(clients["c2"], third, 6, after_hours=20)           # no due time, 20 h
    await t.ok("assignment:feedback", {"assignmentId": third, "text": "Good"})
    started = await assign("c2")
    await clients["c2"].ok("draft:save", {"assignmentId": started, "responses": {"phq9_1": 1}})
    await assign("c1")

    stats = await t.ok("worksheet:analytics", {"worksheetId": sheet["id"]})
    assert (stats["assigned"], stats["inProgress"], stats["submitted"], stats["reviewed"]) == (1, 1, 2, 1)
    assert stats["onTimeRate"] == 0.5
    assert stats["medianSecondsToSubmit"] == 20 * 3600
    series = {entry["clientId"]: entry["points"] for entry in stats["scores"]}
    assert [(p["assignmentId"], p["total"], p["severity"]) for p in series["c1"]] == [
        (first, 18, "moderately severe"), (second, 12, "moderate")]
    assert [(p["total"], p["severity"]) for p in series["c2"]] == [(6, "mild")]
    assert series["c1"][0]["submittedAt"] < series["c1"][1]["submittedAt"]

    other = await server.client("t2", "therapist", NS)
    await other.error("worksheet:analytics", {"worksheetId": sheet["id"]}, code="not_found")
    await clients["c1"].error("worksheet:analytics", {"worksheetId": sheet["id"]}, code="forbidden")


async def test_analytics_of_an_unused_worksheet(server: RunningServer) -> None:
    t = await server.client("t1", "therapist", NS)
    sheet = await t.ok("worksheet:create", {"title": "Diary", "fields": [{"id": "d", "type": "text", "label": "D"}],
                                            "requestId": rid()})
    stats = await t.ok("worksheet:analytics", {"worksheetId": sheet["id"]})
    assert stats == {"worksheetId": sheet["id"], "assigned": 0, "inProgress": 0, "submitted": 0, "reviewed": 0,
                     "onTimeRate": None, "medianSecondsToSubmit": None, "scores": []}
