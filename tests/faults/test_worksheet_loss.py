"""Killing a server process (SIGKILL) right after an acknowledged worksheet update: after a restart the update
is there (the update log is written before the ack; compaction never deletes what it did not fold in)."""
from __future__ import annotations

import asyncio
import base64
import signal

from pycrdt import Doc, Map, Text

from config import Config
from handlers.auth import mint_token
from tests.clients import SioClient
from tests.conftest import ServerProcess
from tests.worksheets.helpers import FIELDS, b64

NS = "/worksheets"
WORDS = 25


async def connect(process: ServerProcess, user: str, role: str, namespace: str = NS) -> SioClient:
    client = SioClient(process.url, namespace)
    await client.connect(auth={"token": mint_token(Config.from_env(process.env), user, role, user)})
    return client


async def story(process: ServerProcess, assignment_id: str) -> str:
    reader = await connect(process, "t1", "therapist")
    opened = await reader.ok("assignment:open", {"assignmentId": assignment_id})
    await reader.disconnect()
    doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    return str(doc.get("responses", type=Map)["story"])


async def test_an_acknowledged_update_survives_kill_9(spawn_server) -> None:  # type: ignore[no-untyped-def]
    first = await spawn_server(redis=False, worksheet_compact_every=4)
    client_chat, therapist_chat = await connect(first, "c1", "client", "/chat"), await connect(first, "t1",
                                                                                                 "therapist", "/chat")
    await therapist_chat.ok("conversation:open", {"memberIds": ["c1"]})
    therapist = await connect(first, "t1", "therapist")
    sheet = await therapist.ok("worksheet:create", {"title": "Diary", "fields": FIELDS, "requestId": "w1"})
    assignment = await therapist.ok("worksheet:assign", {"worksheetId": sheet["id"], "clientId": "c1",
                                                         "requestId": "a1"})
    client = await connect(first, "c1", "client")
    opened = await client.ok("assignment:open", {"assignmentId": assignment["id"]})
    doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    text = doc.get("responses", type=Map)["story"]
    assert isinstance(text, Text)
    for n in range(WORDS):
        before = doc.get_state()
        text += f"w{n} "
        ack = await client.call("doc:update", {"assignmentId": assignment["id"],
                                               "update": b64(doc.get_update(before))})
        assert ack == {"ok": True, "data": {}}
    first.process.send_signal(signal.SIGKILL)  # at once after the last ack (compactions may be under way)
    await asyncio.to_thread(first.process.wait, 10)
    for socket in (client, therapist, client_chat, therapist_chat):
        await socket.disconnect()
    second = await spawn_server(redis=False)
    assert await story(second, assignment["id"]) == "".join(f"w{n} " for n in range(WORDS))
