"""Features this server does not have yet: their namespaces connect, and every contract request says so."""
from __future__ import annotations

import pytest

from realtime.unavailable import BillingNamespace, MeetingsNamespace, UnavailableNamespace
from rest.app_keys import MONGO_DB
from tests.clients import JsDriver
from tests.conftest import RunningServer

UNBUILT: tuple[type[UnavailableNamespace], ...] = (MeetingsNamespace, BillingNamespace)


@pytest.mark.parametrize("namespace", UNBUILT, ids=lambda cls: cls.path)
async def test_every_contract_request_answers_unavailable(server: RunningServer,
                                                          namespace: type[UnavailableNamespace]) -> None:
    client = await server.client("t1", "therapist", namespace.path)
    for event in namespace.contract_events:
        error = await client.error(event, {"meetingId": "m1", "requestId": "r1"}, code="unavailable")
        assert error["message"] == f"{namespace.feature} is not available on this server"
    assert await client.error("nonsense:event", {}, code="invalid_payload")
    refreshed = await client.ok("session:refresh", {"token": server.token("t1", "therapist")})
    assert refreshed["expiresAt"].endswith("Z")
    db = server.app[MONGO_DB]
    written = {name: await db[name].count_documents({}) for name in await db.list_collection_names()}
    assert {name: count for name, count in written.items() if count and name != "users"} == {}  # nothing stored


async def test_the_official_client_hears_unavailable_too(server: RunningServer, js: JsDriver) -> None:
    reply = await js.connect("s", server.url, "/billing", auth={"token": server.token("c1")})
    assert reply["ok"] is True
    ack = await js.emit("s", "subscription:create", {"planId": "p1", "requestId": "r1"})
    assert ack == {"ok": False, "error": {"code": "unavailable", "message": "Billing is not available on this server"}}


async def test_unbuilt_features_refuse_strangers_like_every_namespace(server: RunningServer) -> None:
    from tests.clients import SioClient

    client = SioClient(server.url, "/meetings")
    with pytest.raises(Exception):  # noqa: B017 - socketio raises its ConnectionError
        await client.connect(auth={"token": "not-a-token"})
    assert client.connect_error["data"]["code"] == "unauthorized"
