"""The lock after submission across processes: once `assignment:submit` is acknowledged, no process accepts an
edit, and the edits that were being stored when the lock arrived are refused and leave nothing behind."""
from __future__ import annotations

import asyncio
import base64
from typing import Any

from pycrdt import Doc, Map

from stores.worksheets.relay import Change, Receiver
from tests.conftest import StartServer
from tests.worksheets.helpers import NS, YEditor, assigned
from tests.worksheets.test_documents import feature, stored_responses

LATE = 0.5  # seconds process b takes to hear a lock


def _late_locks(receiver: Receiver) -> Receiver:
    async def late(change: Change) -> None:
        if change.kind == "lock":
            await asyncio.sleep(LATE)
        await receiver(change)
    return late


async def test_no_process_accepts_an_edit_once_the_submission_is_acknowledged(start_server: StartServer) -> None:
    a = await start_server(redis=True)
    b = await start_server(redis=True)
    relay = feature(b).relay
    await relay.close()  # process b hears the lock late (a slow Redis, a busy process): it confirms late too
    relay.start(_late_locks(feature(b).live.relayed))
    for each in (a, b):
        await feature(each).relay.wait_ready()  # type: ignore[attr-defined]
    pair = await assigned(a)
    await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id,
                                        "responses": {"mood": "ok", "story": "x"}})
    therapist = YEditor(await b.client("t1", "therapist", NS), pair.assignment_id)
    opened = await therapist.open()  # process b now holds the document and knows the assignment as editable
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
    # What is stored is exactly the opened document plus the accepted edits: a refused edit left no entry.
    expected = Doc()
    expected.apply_update(base64.b64decode(opened["update"]))
    for update in accepted:
        expected.apply_update(update)
    assert await stored_responses(a, pair.assignment_id) == expected.get("responses", type=Map).to_py()
    assert submitted["responses"]["story"].endswith("x")



async def test_an_edit_being_stored_when_the_lock_arrives_is_refused_and_leaves_nothing(
        start_server: StartServer) -> None:
    a = await start_server(redis=True)
    b = await start_server(redis=True)
    for each in (a, b):
        await feature(each).relay.wait_ready()  # type: ignore[attr-defined]
    pair = await assigned(a)
    await pair.client.ok("draft:save", {"assignmentId": pair.assignment_id,
                                        "responses": {"mood": "ok", "story": "x"}})
    therapist = YEditor(await b.client("t1", "therapist", NS), pair.assignment_id)
    await therapist.open()
    first = await therapist.edit(lambda r: r["story"].insert(0, "1"))
    assert first["ok"]
    documents = feature(b).live.deps.documents
    append, storing, release = documents.append, asyncio.Event(), asyncio.Event()

    async def held_append(*args: Any) -> Any:  # b's next append is durably written only after the submission
        entry_id = await append(*args)
        storing.set()
        await release.wait()
        return entry_id

    documents.append = held_append  # type: ignore[method-assign]
    pending = asyncio.ensure_future(therapist.edit(lambda r: r["story"].insert(0, "2")))
    await storing.wait()
    submitted = await pair.client.ok("assignment:submit", {"assignmentId": pair.assignment_id})
    assert not pending.done()
    release.set()
    refused = await pending
    assert refused["error"]["code"] == "precondition_failed"
    assert submitted["responses"]["story"] == "1x"
    assert (await stored_responses(a, pair.assignment_id))["story"] == "1x"  # its log entry was deleted
