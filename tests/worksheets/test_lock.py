"""The freeze and lock of a submission across processes: the answers are read only once every process stopped
starting writes and the writes under way settled, so every edit acknowledged `ok` is in the submitted answers and
none is acknowledged after the submission is; a failed submission leaves the document editable, and a process that
never hears how a submission ended stops refusing after FREEZE_SECONDS (reading the stored status again)."""
from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from pycrdt import Doc, Map

from handlers.worksheets.live import FREEZE_SECONDS
from stores.worksheets.relay import Change, Receiver
from tests.conftest import RunningServer, StartServer
from tests.meetings.helpers import until
from tests.worksheets.helpers import NS, Pair, YEditor, assigned
from tests.worksheets.test_documents import feature, stored_responses

LATE = 0.5  # seconds process b takes to hear a freeze


def _late_freezes(receiver: Receiver) -> Receiver:
    async def late(change: Change) -> None:
        if change.kind == "freeze":
            await asyncio.sleep(LATE)
        await receiver(change)
    return late


def _deaf_to(kinds: Collection[str], receiver: Receiver) -> Receiver:
    async def deaf(change: Change) -> None:
        if change.kind not in kinds:
            await receiver(change)
    return deaf


async def _processes(start_server: StartServer, hears: Any = None) -> tuple[RunningServer, RunningServer]:
    """Two processes on one Redis; `hears(receiver)` wraps what process b hears of the document relay."""
    a = await start_server(redis=True)
    b = await start_server(redis=True)
    if hears is not None:
        relay = feature(b).relay
        await relay.close()
        relay.start(hears(feature(b).live.relayed))
    for each in (a, b):
        await feature(each).relay.wait_ready()  # type: ignore[attr-defined]
    return a, b


async def _drafted(a: RunningServer, b: RunningServer, **responses: Any) -> tuple[Pair, YEditor]:
    """An assignment with a saved draft, and the therapist's editor on process b (opened: b holds it)."""
    pair = await assigned(a)
    await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id, "responses": responses})
    therapist = YEditor(await b.client("t1", "therapist", NS), pair.assignment_id)
    await therapist.open()
    return pair, therapist


class HeldAppends:
    """A process's next appends are held until `release` (a slow store, seen from outside): once durably written
    (`written`), or before they are."""

    def __init__(self, server: RunningServer, written: bool = True) -> None:
        documents = feature(server).live.deps.documents
        append, self.storing, self.release = documents.append, asyncio.Event(), asyncio.Event()

        async def held(*args: Any) -> Any:
            entry_id = await append(*args) if written else None
            self.storing.set()
            await self.release.wait()
            return entry_id if written else await append(*args)

        documents.append = held  # type: ignore[method-assign]


async def _until_frozen(server: RunningServer, assignment_id: str, frozen: bool = True) -> None:
    """Until the process holds (or no longer holds) a freeze of the document."""
    live = feature(server).live
    await until(lambda: live.freezes.frozen(assignment_id, live.deps.clock()) == frozen, timeout=2, step=0.01)


async def test_every_acknowledged_edit_is_submitted_and_none_after(start_server: StartServer) -> None:
    a, b = await _processes(start_server, _late_freezes)  # b hears the freeze late (a slow Redis, a busy process)
    pair, therapist = await _drafted(a, b, mood="ok", story="x")
    opened = Doc()
    opened.apply_update(therapist.doc.get_update())
    sent: list[tuple[bytes, asyncio.Future[dict[str, Any]]]] = []
    typing = True

    async def type_on_b() -> None:  # each edit sent without waiting for the previous one's ack
        while typing:
            update = therapist.change(lambda r: r["story"].insert(0, "t"))
            sent.append((update, asyncio.ensure_future(therapist.send(update))))
            await asyncio.sleep(0.03)  # 33 edits/s: a fast typist, inside the rate limit

    typist = asyncio.ensure_future(type_on_b())
    await asyncio.sleep(0.3)
    submitted = await pair.client.ok("assignment:submit", {"assignmentId": pair.assignment_id})
    late = await therapist.edit(lambda r: r["story"].insert(0, "late"))  # sent after the submission's ack
    typing = False
    await typist
    assert late["error"]["code"] == "precondition_failed"
    acks = [(update, await ack) for update, ack in sent]
    accepted = [update for update, ack in acks if ack["ok"]]
    refused = [ack["error"]["code"] for _, ack in acks if not ack["ok"]]
    assert accepted and set(refused) <= {"precondition_failed"}
    # Submitted and stored: exactly the opened document plus the accepted edits.
    for update in accepted:
        opened.apply_update(update)
    expected = opened.get("responses", type=Map).to_py()
    assert submitted["responses"] == expected
    assert await stored_responses(a, pair.assignment_id) == expected


async def test_an_edit_being_stored_when_the_submission_begins_is_accepted_and_submitted(
        start_server: StartServer) -> None:
    a, b = await _processes(start_server)
    pair, therapist = await _drafted(a, b, mood="ok", story="x")
    assert (await therapist.edit(lambda r: r["story"].insert(0, "1")))["ok"]
    held = HeldAppends(b)
    pending = asyncio.ensure_future(therapist.edit(lambda r: r["story"].insert(0, "2")))
    await held.storing.wait()
    submitting = asyncio.ensure_future(pair.client.call("assignment:submit", {"assignmentId": pair.assignment_id}))
    await _until_frozen(b, pair.assignment_id)
    assert not submitting.done()  # the submission waits for b's write under way
    held.release.set()
    assert (await pending)["ok"]
    submitted = await submitting
    assert submitted["ok"], submitted
    assert submitted["data"]["responses"]["story"] == "21x"
    assert (await stored_responses(a, pair.assignment_id))["story"] == "21x"
    late = await therapist.edit(lambda r: r["story"].insert(0, "3"))  # sent after the submission's ack
    assert late["error"]["code"] == "precondition_failed"
    assert (await stored_responses(a, pair.assignment_id))["story"] == "21x"


async def test_typing_then_submitting_at_once_submits_the_last_acknowledged_edit(start_server: StartServer) -> None:
    a, b = await _processes(start_server)
    pair, _ = await _drafted(a, b, mood="ok", story="x")
    client = YEditor(pair.client, pair.assignment_id)
    await client.open()
    held = HeldAppends(a)  # the submitting process's own store is slow
    typed = asyncio.ensure_future(client.edit(lambda r: r["story"].insert(1, "!")))
    await held.storing.wait()
    submitting = asyncio.ensure_future(pair.client.call("assignment:submit", {"assignmentId": pair.assignment_id}))
    await _until_frozen(b, pair.assignment_id)  # b confirmed at once; a still waits for its own write
    assert not submitting.done()
    held.release.set()
    assert (await typed)["ok"]
    submitted = await submitting
    assert submitted["ok"], submitted
    assert submitted["data"]["responses"]["story"] == "x!"


async def test_a_refused_submission_leaves_the_document_editable_everywhere(start_server: StartServer) -> None:
    a, b = await _processes(start_server)
    pair, therapist = await _drafted(a, b, mood="ok")
    client = YEditor(pair.client, pair.assignment_id)
    await client.open()
    refused = await pair.client.error("assignment:submit", {"assignmentId": pair.assignment_id},
                                      "precondition_failed")  # found missing before anything was frozen
    assert refused["details"]["missing"] == ["story"]
    assert not feature(b).live.freezes.frozen(pair.assignment_id, b.clock())
    assert (await client.edit(lambda r: r.__setitem__("mood", "good")))["ok"]
    assert (await therapist.edit(lambda r: r.__setitem__("energy", 3)))["ok"]
    assert (await stored_responses(a, pair.assignment_id)) == {"mood": "good", "energy": 3, "story": ""}


async def _refused_while_frozen(a: RunningServer, b: RunningServer) -> tuple[Pair, YEditor]:
    """A submission that passes the first check, then finds an answer gone once frozen: the therapist's edit on b,
    under way when the freeze began, removed it (written once the submission's first check had passed)."""
    pair, therapist = await _drafted(a, b, mood="ok", story="x")
    held = HeldAppends(b, written=False)
    removing = asyncio.ensure_future(therapist.edit(lambda r: r.pop("story")))
    await held.storing.wait()
    submitting = asyncio.ensure_future(pair.client.call("assignment:submit", {"assignmentId": pair.assignment_id}))
    await _until_frozen(b, pair.assignment_id)
    held.release.set()
    assert (await removing)["ok"]
    refused = await submitting
    assert refused["error"]["code"] == "precondition_failed" and refused["error"]["details"]["missing"] == ["story"]
    return pair, therapist


async def test_a_submission_refused_once_frozen_unfreezes_every_process(start_server: StartServer) -> None:
    a, b = await _processes(start_server)
    pair, therapist = await _refused_while_frozen(a, b)
    client = YEditor(pair.client, pair.assignment_id)
    await client.open()
    assert (await client.edit(lambda r: r.__setitem__("mood", "good")))["ok"]  # a unfroze before answering
    await _until_frozen(b, pair.assignment_id, frozen=False)  # b hears the unfreeze (its clock stands still)
    assert (await therapist.edit(lambda r: r.__setitem__("energy", 3)))["ok"]
    assert (await stored_responses(a, pair.assignment_id)) == {"mood": "good", "energy": 3}


async def test_a_process_that_misses_the_unfreeze_accepts_edits_once_the_freeze_expires(
        start_server: StartServer) -> None:
    a, b = await _processes(start_server, lambda receiver: _deaf_to({"unfreeze"}, receiver))
    pair, therapist = await _refused_while_frozen(a, b)
    assert (await therapist.edit(lambda r: r.__setitem__("energy", 3)))["error"]["code"] == "precondition_failed"
    start = b.clock()
    b.clock.source = lambda: start + timedelta(seconds=FREEZE_SECONDS)
    therapist = YEditor(therapist.socket, pair.assignment_id)  # without the refused edit (as a provider resyncs)
    await therapist.open()
    assert (await therapist.edit(lambda r: r.__setitem__("energy", 4)))["ok"]
    assert (await stored_responses(a, pair.assignment_id)) == {"mood": "ok", "energy": 4}


async def test_a_process_that_misses_the_lock_refuses_edits_after_the_freeze_expires(
        start_server: StartServer) -> None:
    a, b = await _processes(start_server, lambda receiver: _deaf_to({"lock"}, receiver))
    pair, therapist = await _drafted(a, b, mood="ok", story="x")
    await pair.client.ok("assignment:submit", {"assignmentId": pair.assignment_id})
    start = b.clock()
    b.clock.source = lambda: start + timedelta(seconds=FREEZE_SECONDS)  # b's freeze ran out, unended
    refused = await therapist.edit(lambda r: r["story"].insert(0, "late"))
    assert refused["error"]["code"] == "precondition_failed"  # b read the stored status again
    assert (await stored_responses(a, pair.assignment_id))["story"] == "x"
