"""Live documents: open, update (validated, durable, relayed), sync after offline edits, awareness, draft saves,
restarts, and the lock after submission."""
from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

from pycrdt import Doc, Map, Text

from handlers.worksheets.feature import WorksheetsFeature
from rest.app_keys import HANDLERS
from stores.worksheets.documents import LEGACY_LOG
from tests.conftest import RunningServer, StartServer
from tests.worksheets.helpers import NS, Pair, YEditor, assigned, b64


def feature(server: RunningServer) -> WorksheetsFeature:
    """The worksheets feature of a server."""
    return server.app[HANDLERS][NS]  # type: ignore[no-any-return]


async def stored_responses(server: RunningServer, assignment_id: str) -> dict:
    """What a fresh load of the stored document (snapshot + log) holds."""
    stored = await feature(server).live.deps.documents.load(assignment_id)
    doc = Doc()
    for update in ([stored.snapshot] if stored.snapshot else []) + list(stored.updates):
        doc.apply_update(update)
    return doc.get("responses", type=Map).to_py() or {}


async def editors(pair: Pair) -> tuple[YEditor, YEditor]:
    """The client's and the therapist's editors, both opened."""
    client, therapist = YEditor(pair.client, pair.assignment_id), YEditor(pair.therapist, pair.assignment_id)
    await client.open()
    await therapist.open()
    return client, therapist


async def test_open_update_relay_and_store(server: RunningServer) -> None:
    pair = await assigned(server)
    client, therapist = await editors(pair)
    assert isinstance(client.responses["story"], Text)  # text fields start as shared texts
    ack = await client.edit(lambda r: r["story"].insert(0, "Slept badly"))
    assert ack == {"ok": True, "data": {}}
    await pair.therapist.expect("doc:updated", consume=False)
    assert therapist.receive() == 1 and therapist.json()["story"] == "Slept badly"
    await pair.client.absent("doc:updated", within=0.2)  # the sender is not echoed
    assert await stored_responses(server, pair.assignment_id) == {"story": "Slept badly"}
    started = await pair.client.expect("assignment:updated", lambda a: a["status"] == "in_progress")
    assert started["id"] == pair.assignment_id
    await pair.therapist.expect("assignment:updated", lambda a: a["status"] == "in_progress")


def attempt(editor: YEditor, edit) -> bytes:  # type: ignore[no-untyped-def]
    """An update made on a throwaway copy of the editor's document (so a refusal leaves the editor intact)."""
    copy = Doc()
    copy.apply_update(editor.doc.get_update())
    before = copy.get_state()
    with copy.transaction():
        edit(copy.get("responses", type=Map))
    return copy.get_update(before)


def other_root(editor: YEditor) -> bytes:
    copy = Doc()
    copy.apply_update(editor.doc.get_update())
    before = copy.get_state()
    copy.get("elsewhere", type=Map)["x"] = 1
    return copy.get_update(before)


BAD_EDITS = {
    "unknown field": lambda r: r.__setitem__("nope", "x"),
    "choice not an option": lambda r: r.__setitem__("mood", "great"),
    "choice of wrong type": lambda r: r.__setitem__("mood", 3),
    "multi with an unknown option": lambda r: r.__setitem__("tags", ["sleep", "golf"]),
    "multi repeated": lambda r: r.__setitem__("tags", ["sleep", "sleep"]),
    "scale above max": lambda r: r.__setitem__("energy", 9),
    "scale below min": lambda r: r.__setitem__("energy", 0),
    "scale not whole": lambda r: r.__setitem__("energy", 2.5),
    "checkbox not boolean": lambda r: r.__setitem__("done", "yes"),
    "text too long": lambda r: r["story"].insert(0, "x" * 10_001),
    "text field replaced by a map": lambda r: r.__setitem__("story", Map({"a": 1})),
}


async def test_invalid_updates_are_refused_not_applied_not_relayed(server: RunningServer) -> None:
    pair = await assigned(server)
    client, _therapist = await editors(pair)
    assert (await client.edit(lambda r: r.__setitem__("mood", "ok")))["ok"]
    await pair.therapist.expect("doc:updated")
    before = await stored_responses(server, pair.assignment_id)
    for name, edit in BAD_EDITS.items():
        ack = await client.send(attempt(client, edit))
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", name
    for raw in (other_root(client), b"\x01\x02garbage"):
        ack = await client.send(raw)
        assert ack["error"]["code"] == "invalid_payload"
    oversize = await pair.client.call("doc:update", {"assignmentId": pair.assignment_id, "update": "A" * 70_000})
    assert oversize["error"]["code"] == "invalid_payload"
    not_base64 = await pair.client.call("doc:update", {"assignmentId": pair.assignment_id, "update": "***!"})
    assert not_base64["error"]["code"] == "invalid_payload"
    valid = b64(attempt(client, lambda r: r.__setitem__("mood", "low")))  # an update that would be accepted
    for shape in ({"assignmentId": pair.assignment_id}, {"assignmentId": pair.assignment_id, "update": 5},
                  {"assignmentId": pair.assignment_id, "update": "AAA"}, {"assignmentId": 7, "update": valid},
                  {"assignmentId": "x" * 129, "update": valid},
                  {"assignmentId": pair.assignment_id, "update": valid, "extra": 1}):  # checked by hand, then schema
        malformed = await pair.client.call("doc:update", shape)
        assert malformed["error"]["code"] == "invalid_payload", shape
    await pair.therapist.absent("doc:updated", within=0.3)
    assert await stored_responses(server, pair.assignment_id) == before == {"story": "", "mood": "ok"}
    # the document still takes valid edits afterwards, from the untouched editor
    assert (await client.edit(lambda r: r.__setitem__("energy", 5)))["ok"]


async def test_an_overloaded_process_refuses_edits_at_once_and_takes_them_again_after(server: RunningServer) -> None:
    pair = await assigned(server)
    client, _therapist = await editors(pair)
    live = feature(server).live
    live.settings = replace(live.settings, shed_lag=0.1)  # off for tests (tests/conftest.py)
    live.lag.stop()  # the injected lag stays as set
    live.lag.lag = 1.0
    ack = await client.edit(lambda r: r["story"].insert(0, "late"))
    assert ack["ok"] is False and ack["error"]["code"] == "unavailable"
    draft = await pair.client.call("draft:save", {"assignmentId": pair.assignment_id, "responses": {"mood": "ok"}})
    assert draft["error"]["code"] == "unavailable"
    await pair.therapist.absent("doc:updated", within=0.3)
    assert await stored_responses(server, pair.assignment_id) == {"story": ""}
    live.lag.lag = 0.0
    retried = await client.send(client.doc.get_update())  # what a Yjs client sends again: all it has
    assert retried == {"ok": True, "data": {}}
    await pair.therapist.expect("doc:updated")
    assert await stored_responses(server, pair.assignment_id) == {"story": "late"}


async def test_the_text_limit_counts_characters_not_bytes(server: RunningServer) -> None:
    pair = await assigned(server)
    client, _ = await editors(pair)
    assert (await client.edit(lambda r: r["story"].insert(0, "é" * 10_000)))["ok"]  # 20,000 UTF-8 bytes
    refused = await client.send(attempt(client, lambda r: r["story"].insert(0, "é")))
    assert refused["error"]["code"] == "invalid_payload"
    assert len((await stored_responses(server, pair.assignment_id))["story"]) == 10_000


async def test_offline_edits_merge_through_sync(server: RunningServer) -> None:
    pair = await assigned(server)
    client, therapist = await editors(pair)
    assert (await client.edit(lambda r: r["story"].insert(0, "Monday.")))["ok"]
    await pair.client.disconnect()
    client.change(lambda r: r["story"].insert(len(str(r["story"])), " Tuesday offline."))  # not sent
    therapist.receive()
    await asyncio.sleep(0.1)
    therapist.receive()
    assert (await therapist.edit(lambda r: r.__setitem__("mood", "low")))["ok"]
    socket = await server.client("c1", "client", NS)
    client.socket = socket
    missing = await socket.ok("doc:sync", {"assignmentId": pair.assignment_id,
                                           "stateVector": b64(client.doc.get_state())})
    client.doc.apply_update(base64.b64decode(missing["update"]))
    opened = await socket.ok("assignment:open", {"assignmentId": pair.assignment_id})
    assert (await client.send(client.doc.get_update(base64.b64decode(opened["stateVector"]))))["ok"]
    await pair.therapist.expect("doc:updated", consume=False)
    therapist.receive()
    expected = {"story": "Monday. Tuesday offline.", "mood": "low"}
    assert client.json() == therapist.json() == expected
    assert await stored_responses(server, pair.assignment_id) == expected


async def test_a_restarted_server_has_the_document(start_server: StartServer) -> None:
    first = await start_server()
    pair = await assigned(first)
    client, _ = await editors(pair)
    for word in ("one ", "two ", "three"):
        assert (await client.edit(lambda r, w=word: r["story"].insert(len(str(r["story"])), w)))["ok"]
    await first.stop()
    second = await start_server()
    reader = YEditor(await second.client("t1", "therapist", NS), pair.assignment_id)
    await reader.open()
    assert reader.json() == {"story": "one two three"}


async def test_updates_stored_in_the_per_update_log_of_earlier_versions_are_kept(start_server: StartServer) -> None:
    first = await start_server()
    pair = await assigned(first)
    client, _ = await editors(pair)
    assert (await client.edit(lambda r: r["story"].insert(0, "new")))["ok"]
    earlier = [client.change(lambda r, w=word: r["story"].insert(0, w)) for word in ("two ", "one ")]
    legacy = first.shared.db[LEGACY_LOG]  # as an earlier careline stored them: a document per update
    await legacy.insert_many([
        {"_id": f"old{n}", "assignmentId": pair.assignment_id, "at": first.clock(),
         "u": first.shared.cipher.seal(update, f"{pair.assignment_id}:old{n}".encode()).to_doc()}
        for n, update in enumerate(earlier)])
    await first.stop()

    second = await start_server()
    assert await second.shared.db[LEGACY_LOG].count_documents({}) == 0
    reader = YEditor(await second.client("t1", "therapist", NS), pair.assignment_id)
    await reader.open()
    assert reader.json() == {"story": "one two new"}
    assert await stored_responses(second, pair.assignment_id) == {"story": "one two new"}


async def test_sync_refuses_a_bad_state_vector(server: RunningServer) -> None:
    pair = await assigned(server)
    ack = await pair.client.call("doc:sync", {"assignmentId": pair.assignment_id, "stateVector": b64(b"\xff\xff\xff")})
    assert ack["error"]["code"] == "invalid_payload"


async def test_awareness_is_relayed_never_stored_and_cleared_when_the_last_socket_leaves(server: RunningServer) -> None:
    pair = await assigned(server)
    await editors(pair)
    second = await server.client("c1", "client", NS)
    await YEditor(second, pair.assignment_id).open()
    state = {"cursor": {"field": "story", "index": 3}, "name": "C1"}
    assert await pair.client.ok("awareness:update", {"assignmentId": pair.assignment_id, "state": state}) == {}
    seen = await pair.therapist.expect("awareness:updated")
    assert seen == {"assignmentId": pair.assignment_id, "userId": "c1", "state": state}
    big = await pair.client.call("awareness:update", {"assignmentId": pair.assignment_id, "state": {"x": "y" * 5000}})
    assert big["error"]["code"] == "invalid_payload"
    await second.disconnect()
    await pair.therapist.absent("awareness:updated", within=0.3)  # c1 still has a socket in the document
    await pair.client.disconnect()
    cleared = await pair.therapist.expect("awareness:updated")
    assert cleared == {"assignmentId": pair.assignment_id, "userId": "c1", "state": None}
    stored = await feature(server).live.deps.documents.load(pair.assignment_id)
    assert all(b"cursor" not in update for update in stored.updates)


async def test_draft_save_writes_into_the_same_document(server: RunningServer) -> None:
    pair = await assigned(server)
    _client, therapist = await editors(pair)
    story = therapist.text("story")
    saved = await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id,
                                                "responses": {"mood": "ok", "energy": 3, "story": "Hello"}})
    assert saved["progress"] == 1.0 and saved["savedAt"].endswith("Z")
    await pair.therapist.expect("doc:updated", consume=False)
    therapist.receive()
    assert therapist.json() == {"story": "Hello", "mood": "ok", "energy": 3}
    assert str(story) == "Hello"  # written into the text the editor already held, not a new one
    pushed = await pair.therapist.expect("assignment:updated", lambda a: a["progress"] == 1.0)
    assert pushed["status"] == "in_progress"
    half = await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id, "responses": {"story": None}})
    assert half["progress"] == 0.5
    for bad in ({"mood": "great"}, {"nope": 1}, {"energy": 7}, {"done": {"a": 1}}, {"tags": "sleep"}):
        ack = await pair.client.call("draft:save", {"assignmentId": pair.assignment_id, "responses": bad})
        assert ack["error"]["code"] == "invalid_payload", bad
    assert await stored_responses(server, pair.assignment_id) == {"story": "", "mood": "ok", "energy": 3}
    therapist.receive()
    assert str(story) == "" and str(therapist.text("story")) == ""  # cleared inside the same shared text


async def test_everything_that_writes_is_refused_after_submission(server: RunningServer) -> None:
    pair = await assigned(server)
    client, therapist = await editors(pair)
    await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id,
                                        "responses": {"mood": "good", "story": "Done"}})
    submitted = await pair.client.ok("assignment:submit", {"assignmentId": pair.assignment_id})
    assert submitted["status"] == "submitted" and submitted["responses"] == {"mood": "good", "story": "Done"}
    for editor in (client, therapist):
        editor.receive()
        ack = await editor.edit(lambda r: r.__setitem__("mood", "low"))
        assert ack["error"]["code"] == "precondition_failed"
    for socket in (pair.client, pair.therapist):
        draft = await socket.call("draft:save", {"assignmentId": pair.assignment_id, "responses": {"mood": "low"}})
        aware = await socket.call("awareness:update", {"assignmentId": pair.assignment_id, "state": {"a": 1}})
        assert draft["error"]["code"] == aware["error"]["code"] == "precondition_failed"
    again = await pair.client.call("assignment:submit", {"assignmentId": pair.assignment_id})
    assert again["error"]["code"] == "precondition_failed"
    assert (await stored_responses(server, pair.assignment_id))["mood"] == "good"
    reopened = await pair.therapist.ok("assignment:open", {"assignmentId": pair.assignment_id})  # reading still works
    assert reopened["assignment"]["status"] == "submitted"


async def test_submit_needs_the_required_answers(server: RunningServer) -> None:
    pair = await assigned(server)
    await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id, "responses": {"mood": "ok"}})
    refused = await pair.client.call("assignment:submit", {"assignmentId": pair.assignment_id})
    assert refused["error"]["code"] == "precondition_failed"
    assert refused["error"]["details"] == {"missing": ["story"]}
    assert (await pair.client.ok("assignment:get", {"assignmentId": pair.assignment_id}))["status"] == "in_progress"


async def test_strangers_cannot_open_sync_update_or_read(server: RunningServer) -> None:
    pair = await assigned(server)
    client, _ = await editors(pair)
    update = b64(attempt(client, lambda r: r.__setitem__("mood", "low")))
    ref = {"assignmentId": pair.assignment_id}
    for sub, role in (("c2", "client"), ("t2", "therapist"), ("x9", "client")):
        other = await server.client(sub, role, NS)
        requests = [("assignment:open", ref), ("assignment:get", ref),
                    ("doc:sync", {**ref, "stateVector": b64(Doc().get_state())}),
                    ("doc:update", {**ref, "update": update}),
                    ("draft:save", {**ref, "responses": {"mood": "low"}}),
                    ("awareness:update", {**ref, "state": {"a": 1}})]
        for event, payload in requests:
            assert (await other.error(event, payload))["code"] == "not_found", (sub, event)
        assert (await other.error("worksheet:get", {"worksheetId": pair.worksheet["id"]}))["code"] == "not_found"
        if role == "therapist":
            for event in ("worksheet:analytics", "worksheet:archive"):
                await other.error(event, {"worksheetId": pair.worksheet["id"]}, code="not_found")
            await other.error("assignment:feedback", {**ref, "text": "hi"}, code="not_found")
        else:
            await other.error("assignment:submit", ref, code="not_found")
            await other.error("assignment:clarify", {**ref, "question": "?"}, code="not_found")
        assert (await other.ok("assignment:list", {}))["items"] == []
    await pair.client.absent("doc:updated", within=0.2)
    assert await stored_responses(server, pair.assignment_id) == {"story": ""}


async def test_two_processes_hold_the_same_document(start_server: StartServer) -> None:
    a = await start_server(redis=True)
    b = await start_server(redis=True)
    for each in (a, b):
        await feature(each).relay.wait_ready()  # type: ignore[attr-defined]
    pair = await assigned(a)
    client = YEditor(pair.client, pair.assignment_id)
    await client.open()
    therapist = YEditor(await b.client("t1", "therapist", NS), pair.assignment_id)
    await therapist.open()
    assert (await client.edit(lambda r: r["story"].insert(0, "from A")))["ok"]
    assert (await therapist.edit(lambda r: r.__setitem__("mood", "good")))["ok"]
    await therapist.socket.expect("doc:updated", consume=False)
    await client.socket.expect("doc:updated", consume=False)
    client.receive()
    therapist.receive()
    expected = {"story": "from A", "mood": "good"}
    assert client.json() == therapist.json() == expected
    for each in (a, b):  # each process's copy applied the other's update as it arrived
        live = feature(each).live.cache.get(pair.assignment_id)
        assert live is not None and live.doc.get("responses", type=Map).to_py() == expected
