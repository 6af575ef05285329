"""Due-soon and overdue reminders: sent once each by several scheduler loops in two processes, skipped once
submitted; and idle documents compacted by the same loop."""
from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

from pycrdt import Doc, Map, Text

from clock import iso
from rest.app_keys import MONGO_DB
from tests.booking.helpers import at, fix_clock
from tests.conftest import RunningServer, StartServer
from tests.worksheets.helpers import NS, acquaint, create_worksheet, rid

NOW = at("2026-03-01T09:00")
DUE = NOW + timedelta(days=3)


async def titles(server: RunningServer, user_id: str) -> list[str]:
    cursor = server.app[MONGO_DB]["notifications"].find({"userId": user_id}).sort("seq", 1)
    return [doc["title"] async for doc in cursor]


async def all_loops(*servers: RunningServer) -> int:
    """Three concurrent scheduler loops per process; how many reminders they sent together."""
    sent = await asyncio.gather(*(server.worksheets.reminders.tick() for server in servers for _ in range(3)))
    for server in servers:
        await server.shared.bus.drain()
    return sum(sent)


async def test_two_processes_send_each_reminder_exactly_once(start_server: StartServer) -> None:
    one = await start_server(redis=True, run_worker_in_web=False)
    two = await start_server(redis=True, run_worker_in_web=False)
    clock = fix_clock(one, two, now=NOW)
    await acquaint(one)
    t = await one.client("t1", "therapist", NS)
    c = await one.client("c1", "client", NS)
    sheet = await create_worksheet(t, fields=[{"id": "a", "type": "checkbox", "label": "Done", "required": True}])
    made: list[dict[str, Any]] = []
    for _ in range(12):
        made.append(await t.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                                    "dueAt": iso(DUE), "requestId": rid()}))
    finished = made.pop()
    await c.ok("draft:save", {"assignmentId": finished["id"], "responses": {"a": True}})
    await c.ok("assignment:submit", {"assignmentId": finished["id"]})
    assert await all_loops(one, two) == 0
    clock[0] = DUE - timedelta(hours=24)
    assert await all_loops(one, two) == 11
    assert await all_loops(one, two) == 0
    clock[0] = DUE + timedelta(seconds=1)
    assert await all_loops(one, two) == 11
    clock[0] = DUE + timedelta(days=2)
    assert await all_loops(one, two) == 0
    names = await titles(one, "c1")
    assert names.count("Worksheet due soon") == 11 and names.count("Worksheet overdue") == 11


async def test_a_short_deadline_reminds_at_once_and_overdue_replaces_due_soon(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)
    clock = fix_clock(server, now=NOW)
    await acquaint(server)
    t = await server.client("t1", "therapist", NS)
    sheet = await create_worksheet(t)
    for hours in (6, 30):
        await t.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                        "dueAt": iso(NOW + timedelta(hours=hours)), "requestId": rid()})
    assert await all_loops(server) == 1  # due in 6 h: due soon now
    clock[0] = NOW + timedelta(hours=40)  # the 30 h one was never reminded as due soon in time: only overdue
    assert await all_loops(server) == 2
    assert await titles(server, "c1") == ["New worksheet", "New worksheet", "Worksheet due soon",
                                          "Worksheet overdue", "Worksheet overdue"]


async def test_the_scheduler_compacts_idle_documents(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False)
    clock = fix_clock(server, now=NOW)
    await acquaint(server)
    t = await server.client("t1", "therapist", NS)
    c = await server.client("c1", "client", NS)
    sheet = await create_worksheet(t)
    assignment = await t.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1", "requestId": rid()})
    for mood in ("low", "ok", "good"):
        await c.ok("draft:save", {"assignmentId": assignment["id"], "responses": {"mood": mood}})
    documents = server.worksheets.live.deps.documents
    assert await documents.log_length(assignment["id"]) == 3
    await server.worksheets.tick()
    assert await documents.log_length(assignment["id"]) == 3  # not idle yet
    clock[0] = NOW + timedelta(minutes=5)
    await server.worksheets.tick()
    assert await documents.log_length(assignment["id"]) == 0
    snapshot = await server.app[MONGO_DB]["worksheet_snapshots"].find_one({"_id": assignment["id"]})
    assert snapshot is not None and b"good" not in repr(snapshot).encode()  # sealed
    fresh = await server.client("t1", "therapist", NS)
    opened = await fresh.ok("assignment:open", {"assignmentId": assignment["id"]})
    doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    assert doc.get("responses", type=Map).to_py() == {"story": "", "mood": "good"}


async def test_compaction_every_n_updates_and_a_half_finished_one_lose_nothing(start_server: StartServer) -> None:
    server = await start_server(run_worker_in_web=False, worksheet_compact_every=5)
    await acquaint(server)
    t = await server.client("t1", "therapist", NS)
    c = await server.client("c1", "client", NS)
    sheet = await create_worksheet(t)
    assignment = await t.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1", "requestId": rid()})
    words = [f"w{n}" for n in range(12)]
    for n in range(len(words)):
        await c.ok("draft:save", {"assignmentId": assignment["id"], "responses": {"story": " ".join(words[:n + 1])}})
    live = server.worksheets.live
    await live.drain()
    documents = live.deps.documents
    assert await documents.log_length(assignment["id"]) < 5  # folded in twice by now
    # A compaction that stored its snapshot and died before deleting the entries it folded in:
    # the entries are read again on load, and Yjs applies them as no-ops.
    stored = await documents.load(assignment["id"])
    merged = Doc()
    for update in [stored.snapshot, *stored.updates]:
        assert update is not None
        merged.apply_update(update)
    assert await documents.replace_snapshot(assignment["id"], merged.get_update(), stored.rev, NOW)
    assert await documents.log_length(assignment["id"]) == len(stored.updates)
    reader = await server.client("t1", "therapist", NS)
    opened = await reader.ok("assignment:open", {"assignmentId": assignment["id"]})
    doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    assert doc.get("responses", type=Map).to_py() == {"story": " ".join(words)}
    live.cache.drop(assignment["id"])  # and a process loading it from the store alone
    assert await live.current_responses(await live.deps.assignments.get(assignment["id"])) == {  # type: ignore[arg-type]
        "story": " ".join(words)}


async def test_a_round_holding_part_of_a_documents_log_loses_nothing(start_server: StartServer) -> None:
    """Compaction folds whole log entries: folding the entry of an update before the entry of the one it builds on
    (as another process's may be) keeps both, whichever order the rounds take."""
    server = await start_server(run_worker_in_web=False)
    live = server.worksheets.live
    documents = live.deps.documents
    first = Doc()
    first.get("responses", type=Map)["story"] = Text("hello")
    hello = first.get_update()
    second = Doc()
    second.apply_update(hello)
    before = second.get_state()
    text = second.get("responses", type=Map)["story"]
    assert isinstance(text, Text)
    text.insert(5, " world")
    world = second.get_update(before)
    earlier = await documents.append("doc-1", hello, NOW)
    later = await documents.append("doc-1", world, NOW)
    assert earlier.entry_id != later.entry_id

    def held(stored: Any) -> Any:
        doc = Doc()
        for update in [stored.snapshot, *stored.updates]:
            doc.apply_update(update)
        return doc.get("responses", type=Map).to_py()

    # a process's own round merges: " world" alone, though it builds on an entry no round folded yet
    assert await live.compactor.fold([later.entry_id], full=False)
    assert held(await documents.load("doc-1")) == {"story": "hello world"}
    assert await live.compactor.fold([earlier.entry_id], full=False)
    assert await documents.log_length("doc-1") == 0
    assert held(await documents.load("doc-1")) == {"story": "hello world"}
    more = await documents.append("doc-1", world, NOW)  # a repeat; an idle round folds in full
    assert await live.compactor.fold([more.entry_id])
    assert held(await documents.load("doc-1")) == {"story": "hello world"}
