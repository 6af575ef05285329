"""A contract namespace staged before its feature is built (realtime/unavailable.py, docs/features.md): its
sockets connect, every contract request answers `unavailable`, and nothing is stored. Every contract feature
is built now; the mechanism stays for the next one, tested here with a staged namespace of its own."""
from __future__ import annotations

from typing import ClassVar

import pytest

from realtime.unavailable import UnavailableNamespace
from rest.app_keys import METRICS, MONGO_DB
from server import SIO
from tests.clients import SioClient
from tests.conftest import RunningServer


class JournalNamespace(UnavailableNamespace):
    """A feature not built yet."""

    path, feature = "/journal", "Journal"
    contract_events: ClassVar[tuple[str, ...]] = ("entry:create", "entry:list")


@pytest.fixture
async def staged(server: RunningServer) -> RunningServer:
    server.app[SIO].register_namespace(JournalNamespace(None, server.shared, server.app[METRICS]))
    return server


async def test_every_contract_request_answers_unavailable(staged: RunningServer) -> None:
    client = await staged.client("t1", "therapist", JournalNamespace.path)
    for event in JournalNamespace.contract_events:
        error = await client.error(event, {"requestId": "r1"}, code="unavailable")
        assert error["message"] == "Journal is not available on this server"
    assert await client.error("nonsense:event", {}, code="invalid_payload")
    refreshed = await client.ok("session:refresh", {"token": staged.token("t1", "therapist")})
    assert refreshed["expiresAt"].endswith("Z")
    db = staged.app[MONGO_DB]
    written = {name: await db[name].count_documents({}) for name in await db.list_collection_names()}
    assert {name: count for name, count in written.items() if count and name != "users"} == {}  # nothing stored


async def test_a_staged_namespace_refuses_strangers_like_every_namespace(staged: RunningServer) -> None:
    client = SioClient(staged.url, JournalNamespace.path)
    with pytest.raises(Exception):  # noqa: B017 - socketio raises its ConnectionError
        await client.connect(auth={"token": "not-a-token"})
    assert client.connect_error["data"]["code"] == "unauthorized"
