"""Losing a server process (SIGKILL) mid-traffic: its clients move to the other process, catch up by seq,
and nothing acknowledged is missing or stored twice."""
from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Any

from config import Config
from handlers.auth import mint_token
from tests.chat.helpers import catch_up
from tests.clients import SioClient
from tests.conftest import ServerProcess

SEND_EVERY = 0.05
PAIRS = 4


@dataclass
class Writer:
    """A member who sends, remembers every ack, and every message it has seen (live or by catch-up)."""

    user: str
    conversation_id: str
    client: SioClient
    acked: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)  # sent, but the connection died before the ack
    seen: dict[str, int] = field(default_factory=dict)  # message id -> seq
    count: int = 0

    async def send_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.count += 1
            await self.send(f"{self.user}-{self.count}")
            await asyncio.sleep(SEND_EVERY)

    async def send(self, request_id: str) -> None:
        try:
            ack = await self.client.call("message:send", {"conversationId": self.conversation_id,
                                                          "text": request_id, "requestId": request_id}, timeout=3)
        except Exception:  # the process died under the request: send it again after reconnecting
            self.unknown.add(request_id)
            return
        if ack.get("ok"):
            self.acked.add(request_id)
            self.unknown.discard(request_id)
            self.seen[ack["data"]["id"]] = ack["data"]["seq"]
        else:
            self.unknown.add(request_id)

    def note_live(self) -> None:
        for data in self.client.events.pop("message:created", []):
            self.seen[data["id"]] = data["seq"]


async def _connect(process: ServerProcess, user: str, role: str) -> SioClient:
    client = SioClient(process.url, "/chat")
    await client.connect(auth={"token": mint_token(Config.from_env(process.env), user, role, user)})
    return client


async def _arrange(first: ServerProcess, second: ServerProcess) -> list[Writer]:
    writers = []
    for pair in range(PAIRS):
        staff = await _connect(first, f"t{pair}", "therapist")
        client = await _connect(second, f"c{pair}", "client")
        conversation = await staff.ok("conversation:open", {"memberIds": [f"c{pair}"]})
        for sio, user in ((staff, f"t{pair}"), (client, f"c{pair}")):
            await sio.ok("conversation:join", {"conversationId": conversation["id"]})
            writers.append(Writer(user, conversation["id"], sio))
    return writers


async def _move(writer: Writer, survivor: ServerProcess) -> None:
    """Reconnect to the surviving process, rejoin, catch up from the last seq seen, resend the unknown."""
    writer.note_live()
    writer.client = await _connect(survivor, writer.user, "therapist" if writer.user.startswith("t") else "client")
    await writer.client.ok("conversation:join", {"conversationId": writer.conversation_id})
    await _catch_up(writer)
    for request_id in sorted(writer.unknown):
        await writer.send(request_id)


async def _catch_up(writer: Writer) -> list[dict[str, Any]]:
    """Catch up from the highest seq the writer has seen, and remember what came."""
    items = await catch_up(writer.client, writer.conversation_id, max(writer.seen.values(), default=0))
    writer.seen.update({item["id"]: item["seq"] for item in items})
    return items


async def _fill_gaps(writer: Writer) -> None:
    """What a connected client does when seqs jump (a message sent through a process that died before
    delivering it): catch up from the last seq it has without a hole."""
    seqs = sorted(set(writer.seen.values()))
    contiguous = next((index - 1 for index, seq in enumerate(seqs, start=1) if seq != index), len(seqs))
    probe = Writer(writer.user, writer.conversation_id, writer.client, seen={"_": contiguous})
    await _catch_up(probe)
    writer.seen.update({key: seq for key, seq in probe.seen.items() if key != "_"})


async def _stored(writer: Writer) -> list[dict[str, Any]]:
    probe = Writer(writer.user, writer.conversation_id, writer.client)
    return await _catch_up(probe)


async def test_a_killed_process_loses_nothing_acknowledged(spawn_server) -> None:  # type: ignore[no-untyped-def]
    first, second = await spawn_server(redis=True), await spawn_server(redis=True)
    writers = await _arrange(first, second)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(writer.send_until(stop)) for writer in writers]
    await asyncio.sleep(2.0)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    stop.set()
    await asyncio.gather(*tasks)
    orphans = [writer for writer in writers if writer.client.url == first.url]
    await asyncio.gather(*(_move(writer, second) for writer in orphans))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(writer.send_until(stop)) for writer in writers]
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.3)
    for writer in writers:
        writer.note_live()
        await _fill_gaps(writer)
        stored = await _stored(writer)
        texts = [item["text"] for item in stored]
        assert len(texts) == len(set(texts)), "a message stored twice"
        assert writer.acked <= set(texts), "an acknowledged message is missing"
        assert {item["id"] for item in stored} <= set(writer.seen) | {item["id"] for item in stored}
        _assert_nothing_missed(writer, stored)
    assert sum(len(writer.acked) for writer in writers) >= 200


def _assert_nothing_missed(writer: Writer, stored: list[dict[str, Any]]) -> None:
    """Live events, acks and catch-up together cover every stored message of the conversation."""
    writer_view = set(writer.seen)
    missing = [item["seq"] for item in stored if item["id"] not in writer_view]
    assert missing == [], f"{writer.user} never saw seqs {missing[:10]}"
