"""Schema-driven fuzzer (issue 17): every request of every namespace gets payloads generated from its schema
(valid, boundary and invalid, binary parts, deep nesting, lone surrogates, wrong types) through a real
python-socketio client. Every ack is `ok` or a contract error other than `internal`, the connection stays
open, nothing is logged at ERROR, and a batch of refused requests stores nothing.

New events are fuzzed without an entry here (payloads come from their schema); FUZZ_EXAMPLES sets the
number of examples per event (50 in CI), FUZZ_SEED the seed.
"""
from __future__ import annotations

import logging
import zlib
from typing import Any

import pytest

from clock import iso
from errors import ERROR_CODES
from realtime.base import BaseNamespace
from rest.app_keys import MONGO_DB
from server import FEATURES
from tests.booking.helpers import availability, later
from tests.conftest import RunningServer, StartServer
from tests.hostile.fuzz import EXAMPLES, draw, payload_strategy

ANSWERS = set(ERROR_CODES) - {"internal"}
NAMESPACES = [feature.namespace for feature in FEATURES]


async def document_counts(db: Any) -> dict[str, int]:
    return {name: await db[name].count_documents({}) for name in sorted(await db.list_collection_names())}


def no_limits(_: str, burst: int, per_second: float) -> Any:
    async def allowed() -> int:
        return 0
    return allowed()


async def seed_ids(server: RunningServer, path: str) -> list[str]:
    """Real resources the fuzz users share, so generated ids sometimes name something that exists."""
    if path == "/chat":
        client = await server.client("fuzz-client", "client", "/chat")
        conversation = await client.ok("conversation:open", {"memberIds": ["fuzz-therapist"]})
        message = await client.ok("message:send", {"conversationId": conversation["id"], "text": "seed",
                                                   "requestId": "fuzz-seed"})
        report = await client.ok("message:report", {"messageId": message["id"], "reason": "seed"})
        await server.chat.deps.activity.flush()  # written behind: not by the fuzzed requests
        return [conversation["id"], message["id"], report["reportId"]]
    if path == "/booking":
        therapist = await server.client("fuzz-therapist", "therapist", "/booking")
        await therapist.ok("availability:set", availability())
        client = await server.client("fuzz-client", "client", "/booking")
        booking = await client.ok("booking:create", {"therapistId": "fuzz-therapist", "start": iso(later(48)),
                                                     "requestId": "fuzz-seed"})
        return [booking["id"]]
    return []


@pytest.mark.timeout(900)
@pytest.mark.parametrize("namespace", NAMESPACES, ids=lambda namespace: namespace.path)
async def test_every_request_survives_generated_payloads(start_server: StartServer, caplog: pytest.LogCaptureFixture,
                                                         namespace: type[BaseNamespace[Any]]) -> None:
    caplog.set_level(logging.ERROR)
    server = await start_server(connection_rate_per_second=100_000, connection_rate_burst=100_000)
    server.shared.rate_limiter.take = no_limits  # type: ignore[method-assign]  # reach past the per-user limits
    clients = {role: await server.client(f"fuzz-{role}", role, namespace.path)
               for role in ("client", "therapist", "admin")}
    known = [*(f"fuzz-{role}" for role in clients), *await seed_ids(server, namespace.path)]
    await server.shared.bus.drain()  # what the seeding set off in the background
    db = server.app[MONGO_DB]
    for event, spec in sorted(namespace.requests.items()):
        client = clients[spec.roles[0] if spec.roles else "client"]
        before, accepted = await document_counts(db), 0
        strategy = payload_strategy(spec.schema, known)
        for payload in draw(strategy, EXAMPLES, salt=zlib.crc32(event.encode())):
            reply = await client.call(event, payload, timeout=10)
            assert reply["ok"] or reply["error"]["code"] in ANSWERS, (event, payload, reply)
            assert client.sio.connected, (event, payload)
            accepted += bool(reply["ok"])
        if not accepted:
            assert await document_counts(db) == before, f"{event}: refused requests stored something"
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors[:5]
