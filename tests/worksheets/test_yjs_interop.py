"""The official Yjs client (npm `yjs` over the official socket.io-client, in Node) and a pycrdt client edit one
assignment concurrently through two server processes sharing Redis: 300 random edits each, then every replica,
a freshly opened document and the stored state are identical."""
from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from tests.clients import JS_DIR
from tests.conftest import RunningServer, StartServer
from tests.worksheets.helpers import NS, YEditor, assigned

EDITS = 300
PAUSE = 0.03  # between one editor's edits (its rate limit is 40 updates/s)
WORDS = ["calm", "tired", " ", "é", "ß", "ok", "\n", "walk", "ça"]


def byte_index(text: str, chars: int) -> int:
    """pycrdt text indices count UTF-8 bytes."""
    return len(text[:chars].encode())


def random_edit(rng: random.Random, responses: Map) -> None:
    text = responses["story"]
    assert isinstance(text, Text)
    current = str(text)
    roll = rng.random()
    if roll < 0.6 or not current:
        text.insert(byte_index(current, rng.randint(0, len(current))), rng.choice(WORDS))
    elif roll < 0.85:
        at = rng.randrange(len(current))
        end = min(len(current), at + rng.randint(1, 3))
        del text[byte_index(current, at):byte_index(current, end)]
    else:
        responses["mood"] = rng.choice(["low", "ok", "good"])


async def send_retrying(editor: YEditor, update: bytes) -> dict[str, Any]:
    """doc:update, sent again while the answer is `unavailable` (a busy shared machine can stall the database
    past its timeout; a Yjs update stored twice is a no-op)."""
    for _ in range(10):
        ack = await editor.send(update)
        if ack["ok"] or ack["error"]["code"] != "unavailable":
            return ack
        await asyncio.sleep(0.2)
    return ack


async def quiet(editor: YEditor, seconds: float = 1.0) -> None:
    """Apply relayed updates until none has arrived for `seconds`."""
    last = time.monotonic()
    while time.monotonic() - last < seconds:
        if editor.receive():
            last = time.monotonic()
        await asyncio.sleep(0.05)


async def stored_json(server: RunningServer, assignment_id: str) -> dict[str, Any]:
    stored = await server.worksheets.live.deps.documents.load(assignment_id)
    doc = Doc()
    for update in ([stored.snapshot] if stored.snapshot else []) + list(stored.updates):
        doc.apply_update(update)
    return doc.get("responses", type=Map).to_py() or {}


async def read_message(process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout)
    assert line, "the Yjs editor exited"
    message: dict[str, Any] = json.loads(line)
    assert message["event"] != "error", message
    return message


@pytest.mark.js
@pytest.mark.slow
async def test_yjs_and_pycrdt_converge_across_two_processes(start_server: StartServer, js_ready: None) -> None:
    a = await start_server(redis=True)
    b = await start_server(redis=True)
    for each in (a, b):
        await each.worksheets.relay.wait_ready()  # type: ignore[attr-defined]
    pair = await assigned(a)
    python = YEditor(pair.therapist, pair.assignment_id)
    await python.open()
    options = {"url": b.url, "token": b.token("c1", "client"), "assignmentId": pair.assignment_id, "edits": EDITS,
               "seed": 7, "textField": "story", "choiceField": "mood", "options": ["low", "ok", "good"],
               "pauseMs": PAUSE * 1000}
    node = await asyncio.create_subprocess_exec("node", str(JS_DIR / "yjs_editor.mjs"), json.dumps(options),
                                                cwd=JS_DIR, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        rng = random.Random(11)
        refused = []
        for _ in range(EDITS):
            python.receive()
            ack = await send_retrying(python, python.change(lambda responses: random_edit(rng, responses)))
            if not ack["ok"]:
                refused.append(ack)
            await asyncio.sleep(PAUSE)
        assert refused == []
        edited = await read_message(node, timeout=120)
        assert edited["refused"] == 0 and edited["acked"] >= EDITS * 0.9
        await quiet(python)
        assert node.stdin is not None
        node.stdin.write(b"finish\n")
        await node.stdin.drain()
        final = await read_message(node, timeout=30)
    finally:
        if node.returncode is None:
            node.kill()
        await node.wait()
    python.receive()
    yjs_doc = Doc()
    yjs_doc.apply_update(base64.b64decode(final["update"]))
    fresh = YEditor(await b.client("t1", "therapist", NS), pair.assignment_id)
    await fresh.open()
    stored = await stored_json(a, pair.assignment_id)
    assert len(stored["story"]) > 50 and stored["mood"] in ("low", "ok", "good")
    assert final["json"] == python.json() == fresh.json() == stored
    assert yjs_doc.get("responses", type=Map).to_py() == stored
    for each in (a, b):  # both processes' copies converged too
        live = each.worksheets.live.cache.get(pair.assignment_id)
        assert live is not None and live.doc.get("responses", type=Map).to_py() == stored
