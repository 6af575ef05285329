"""The request conventions every namespace shares: envelope, validation, size limit, rate limits."""
from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from handlers.auth import User
from realtime.base import BaseNamespace, request
from realtime.schemas.common import OutputSchema, RequestId, RequestSchema, fields, validate
from rest.app_keys import METRICS, MONGO_DB
from server import SIO
from stores.ratelimit import lease_size
from tests.conftest import RunningServer, StartServer


class CreateItem(RequestSchema):
    title = fields.String(required=True, validate=validate.Length(1, 100))
    count = fields.Integer(required=True, validate=validate.Range(0, 10))
    tags = fields.List(fields.String(validate=validate.Length(max=20)), load_default=list)
    request_id = RequestId(required=True)


class ItemOut(OutputSchema):
    title = fields.String()
    request_id = fields.String()


class CountOut(OutputSchema):
    n = fields.Integer()


BURST = 40  # leased four tokens at a time (stores/ratelimit.py lease_size)


class ProbeNamespace(BaseNamespace[None]):
    """A namespace that stores what it is sent, to prove invalid requests store nothing."""

    path = "/probe"

    @request("item:create", CreateItem, ack=ItemOut)
    async def create(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        await self.db["items"].insert_one({"owner": user.id, **payload})
        return {"title": payload["title"], "request_id": payload["request_id"]}

    @request("item:boom")
    async def boom(self, sid: str, user: User, payload: dict[str, Any]) -> None:
        raise RuntimeError("secret detail that must not leak")

    @request("item:slow", ack=CountOut, rate=(3, 1.0))
    async def slow(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        return {"n": 1}

    @request("item:burst", ack=CountOut, rate=(BURST, 1.0))
    async def burst(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        return {"n": 1}


async def probe(server: RunningServer) -> ProbeNamespace:
    namespace = ProbeNamespace(None, server.shared, server.app[METRICS])
    namespace.db = server.app[MONGO_DB]  # type: ignore[attr-defined]
    server.app[SIO].register_namespace(namespace)
    return namespace


async def test_valid_request_gets_ok_envelope(server: RunningServer) -> None:
    await probe(server)
    client = await server.client("u1", namespace="/probe")
    ack = await client.call("item:create", {"title": "a", "count": 1, "requestId": "r1"})
    assert ack == {"ok": True, "data": {"title": "a", "requestId": "r1"}}


@pytest.mark.parametrize("payload,field", [
    ({"title": 5, "count": 1, "requestId": "r"}, "title"),
    ({"title": "a", "count": "many", "requestId": "r"}, "count"),
    ({"title": "a", "count": 11, "requestId": "r"}, "count"),
    ({"count": 1, "requestId": "r"}, "title"),
    ({"title": "a", "count": 1, "requestId": ""}, "requestId"),
    ({"title": "a", "count": 1, "requestId": "r", "extra": True}, "extra"),
    ({"title": "a", "count": 1, "requestId": "r", "tags": ["x" * 21]}, "tags"),
])
async def test_invalid_payloads_are_refused_and_store_nothing(server: RunningServer, payload: dict[str, Any],
                                                              field: str) -> None:
    namespace = await probe(server)
    client = await server.client("u1", namespace="/probe")
    error = await client.error("item:create", payload, code="invalid_payload")
    assert field in error["details"]
    assert await namespace.db["items"].count_documents({}) == 0  # type: ignore[attr-defined]


async def test_oversize_and_non_object_payloads(server: RunningServer) -> None:
    namespace = await probe(server)
    client = await server.client("u1", namespace="/probe")
    huge = {"title": "a", "count": 1, "requestId": "r", "tags": ["x" * 20] * 4000}
    error = await client.error("item:create", huge, code="invalid_payload")
    assert error["details"] == {"_payload": ["Too large."]}
    for bad in (["list"], "text", 7):
        await client.error("item:create", bad, code="invalid_payload")
    assert await namespace.db["items"].count_documents({}) == 0  # type: ignore[attr-defined]


async def test_unknown_event_with_ack(server: RunningServer) -> None:
    client = await server.client("u1", namespace="/chat")
    error = await client.error("nothing:here", {}, code="invalid_payload")
    assert error["details"] == {"event": ["Unknown event."]}


async def test_unexpected_errors_are_internal_and_hide_details(server: RunningServer) -> None:
    await probe(server)
    client = await server.client("u1", namespace="/probe")
    error = await client.error("item:boom", {}, code="internal")
    assert "secret" not in error["message"]


@pytest.mark.parametrize("redis", [False, True])
async def test_flood_is_rate_limited_per_user(start_server: StartServer, redis: bool) -> None:
    server = await start_server(redis=redis)
    await probe(server)
    flooder = await server.client("flooder", namespace="/probe")
    other = await server.client("calm", namespace="/probe")
    acks = await asyncio.gather(*(flooder.call("item:slow", {}) for _ in range(10)))
    limited = [ack for ack in acks if not ack["ok"]]
    assert sum(ack["ok"] for ack in acks) == 3 and len(limited) == 7
    assert all(ack["error"]["code"] == "rate_limited" for ack in limited)
    assert all(0 < ack["error"]["details"]["retryAfterMs"] <= 1000 for ack in limited)
    assert (await other.call("item:slow", {}))["ok"] is True
    await asyncio.sleep(limited[0]["error"]["details"]["retryAfterMs"] / 1000 + 0.05)
    assert (await flooder.call("item:slow", {}))["ok"] is True


async def test_rate_limits_are_shared_across_processes(start_server: StartServer) -> None:
    first, second = await start_server(redis=True), await start_server(redis=True)
    for server in (first, second):
        await probe(server)
    a = await first.client("u1", namespace="/probe")
    b = await second.client("u1", namespace="/probe")
    acks = [await a.call("item:slow", {}) for _ in range(2)] + [await b.call("item:slow", {}) for _ in range(2)]
    assert [ack["ok"] for ack in acks] == [True, True, True, False]


async def test_leased_tokens_never_exceed_the_shared_bucket(start_server: StartServer) -> None:
    """Each process serves a large bucket from tokens it leased from Redis: together never more than the bucket,
    and at most one unused lease per process short of it (docs/storage.md)."""
    first, second = await start_server(redis=True), await start_server(redis=True)
    for server in (first, second):
        await probe(server)
    a = await first.client("u1", namespace="/probe")
    b = await second.client("u1", namespace="/probe")
    began = time.monotonic()
    acks = await asyncio.gather(*(client.call("item:burst", {}) for _ in range(BURST) for client in (a, b)))
    refilled = math.ceil(time.monotonic() - began)  # the bucket refills one token a second meanwhile
    allowed = sum(ack["ok"] for ack in acks)
    assert BURST - 2 * (lease_size(BURST) - 1) <= allowed <= BURST + refilled
    refused = [ack["error"] for ack in acks if not ack["ok"]]
    assert all(error["code"] == "rate_limited" and 0 < error["details"]["retryAfterMs"] <= 1000 for error in refused)
    other = await second.client("u2", namespace="/probe")
    assert (await other.call("item:burst", {}))["ok"] is True
