"""Connect-time authentication, token expiry and session:refresh, from the JS and the Python client."""
from __future__ import annotations

import asyncio
import time
import warnings

import jwt
import pytest
import socketio

from server import FEATURES
from tests.clients import JsDriver, SioClient
from tests.conftest import JWT_SECRET, RunningServer

NAMESPACES = [feature.path for feature in FEATURES]


def _token(sub: str = "u1", role: str = "client", exp_in: int = 3600, secret: str = JWT_SECRET,
           **extra: object) -> str:
    claims = {"sub": sub, "role": role, "exp": int(time.time()) + exp_in, **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


def _hs512_token() -> str:
    """A token signed with HS512 over the server's own secret (shorter than HS512 recommends: that warning is
    the point, not a problem of the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode({"sub": "u1", "role": "client", "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS512")


REFUSALS = {
    "missing": (None, "unauthorized"),
    "bad_signature": (_token(secret="another-secret-another-secret-xx"), "unauthorized"),
    "expired": (_token(exp_in=-10), "token_expired"),
    "bad_role": (_token(role="superuser"), "unauthorized"),
    "no_exp": (jwt.encode({"sub": "u1", "role": "client"}, JWT_SECRET, algorithm="HS256"), "unauthorized"),
    "exp_as_string": (jwt.encode({"sub": "u1", "role": "client", "exp": str(int(time.time()) + 600)}, JWT_SECRET,
                                 algorithm="HS256"), "unauthorized"),
    "iat_as_string": (_token(iat="1700000000"), "unauthorized"),
    "far_future": (jwt.encode({"sub": "u1", "role": "client", "exp": 10**20}, JWT_SECRET, algorithm="HS256"),
                   "unauthorized"),
    "over_max_lifetime": (_token(exp_in=2 * 86_400), "unauthorized"),  # made at import: a margin for slow runs
    # only HS256 with the configured secret (the decoder's HS256 is careline's PreparedHMAC): no unsigned token,
    # no other HMAC algorithm over the same secret
    "alg_none": (jwt.encode({"sub": "u1", "role": "client", "exp": int(time.time()) + 600}, None, algorithm="none"),
                 "unauthorized"),
    "alg_hs512": (_hs512_token(), "unauthorized"),
}


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_js_client_connects_to_every_namespace(server: RunningServer, js: JsDriver,
                                                     transports: list[str]) -> None:
    token = server.token("u1", "therapist")
    for index, namespace in enumerate(NAMESPACES):
        reply = await js.connect(f"s{index}", server.url, namespace, auth={"token": token}, transports=transports)
        assert reply["ok"] is True and reply["transport"] == transports[0]
        ack = await js.emit(f"s{index}", "session:refresh", {"token": token})
        assert ack["ok"] is True and ack["data"]["expiresAt"].endswith("Z")
        bad = await js.emit(f"s{index}", "session:refresh", {})
        assert bad == {"ok": False, "error": {"code": "invalid_payload", "message": "The payload is not valid",
                                              "details": {"token": ["Missing data for required field."]}}}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_refused_tokens_js(server: RunningServer, js: JsDriver, case: str) -> None:
    token, code = REFUSALS[case]
    reply = await js.connect("s", server.url, "/chat", auth={"token": token} if token else None)
    assert reply["ok"] is False
    assert reply["error"]["data"]["code"] == code
    assert reply["error"]["data"]["message"]


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_refused_tokens_python(server: RunningServer, case: str) -> None:
    token, code = REFUSALS[case]
    client = SioClient(server.url, "/booking")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth={"token": token} if token else None)
    assert client.connect_error["data"]["code"] == code


async def test_token_in_query_string_is_refused(server: RunningServer, js: JsDriver) -> None:
    token = server.token("u1")
    reply = await js.connect("s", server.url, "/chat", query={"token": token})
    assert reply["ok"] is False and reply["error"]["data"]["code"] == "unauthorized"
    client = SioClient(server.url, "/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(query=f"?token={token}")
    assert client.connect_error["data"]["code"] == "unauthorized"


async def test_bearer_header_is_accepted(server: RunningServer, js: JsDriver) -> None:
    token = server.token("u1")
    reply = await js.connect("s", server.url, "/chat", extraHeaders={"Authorization": f"Bearer {token}"},
                             transports=["polling"])
    assert reply["ok"] is True
    client = SioClient(server.url, "/chat")
    await client.connect(headers={"Authorization": f"Bearer {token}"})
    assert (await client.call("session:refresh", {"token": token}))["ok"] is True
    await client.disconnect()


async def test_audience_and_issuer_are_checked(start_server, js: JsDriver) -> None:
    server = await start_server(jwt_audience="careline-web", jwt_issuer="https://auth.example")
    wrong_aud = _token(aud="someone-else", iss="https://auth.example")
    wrong_iss = _token(aud="careline-web", iss="https://evil.example")
    for index, token in enumerate([wrong_aud, wrong_iss, _token()]):
        reply = await js.connect(f"s{index}", server.url, "/chat", auth={"token": token})
        assert reply["ok"] is False and reply["error"]["data"]["code"] == "unauthorized"
    good = await js.connect("ok", server.url, "/chat", auth={"token": server.token("u1")})
    assert good["ok"] is True


async def test_socket_is_disconnected_at_token_expiry(server: RunningServer) -> None:
    client = await server.client("u1", ttl=2)
    expired = await client.expect("session:expired", timeout=5)
    assert expired["code"] == "token_expired"
    await client.expect("disconnect", timeout=3)
    assert not client.connected


async def test_refresh_keeps_the_socket(server: RunningServer) -> None:
    client = await server.client("u1", ttl=2)
    data = await client.ok("session:refresh", {"token": server.token("u1", ttl=3600)})
    assert data["expiresAt"].endswith("Z")
    await asyncio.sleep(2.8)
    assert client.connected
    assert (await client.call("session:refresh", {"token": server.token("u1", ttl=3600)}))["ok"] is True


async def test_refresh_with_another_users_token_is_refused(server: RunningServer) -> None:
    client = await server.client("u1", ttl=2)
    error = await client.error("session:refresh", {"token": server.token("u2", ttl=3600)}, code="forbidden")
    assert "another user" in error["message"]
    await client.error("session:refresh", {"token": _token(secret="x" * 40)}, code="unauthorized")
    await client.expect("disconnect", timeout=4)


async def test_refresh_refuses_expired_and_earlier_expiring_tokens(server: RunningServer) -> None:
    client = await server.client("u1", ttl=600)
    error = await client.error("session:refresh", {"token": _token("u1", exp_in=-10)}, code="unauthorized")
    assert error["details"] == {"reason": "expired"}
    await client.error("session:refresh", {"token": server.token("u1", ttl=60)}, code="precondition_failed")
    assert (await client.ok("session:refresh", {"token": server.token("u1", ttl=1200)}))["expiresAt"]


async def test_connect_records_the_user(server: RunningServer) -> None:
    await server.client("t1", "therapist", name="Dr Who")
    record = await server.shared.users.get("t1")
    assert record is not None and record.role == "therapist" and record.name == "Dr Who"
    assert record.last_seen_at is not None


async def test_a_token_verified_before_is_refused_once_it_has_expired(server: RunningServer, js: JsDriver) -> None:
    """Verified tokens are remembered (a client's namespaces share one): that never lengthens a token's life."""
    token = _token("u1", exp_in=2)
    for index, namespace in enumerate(NAMESPACES[:2]):  # the second connect is answered from what the first verified
        reply = await js.connect(f"s{index}", server.url, namespace, auth={"token": token})
        assert reply["ok"] is True
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # same claims, another signature
    reply = await js.connect("tampered", server.url, "/chat", auth={"token": tampered})
    assert reply["ok"] is False and reply["error"]["data"]["code"] == "unauthorized"
    await asyncio.sleep(2.5)
    for index, namespace in enumerate(NAMESPACES[:2]):
        reply = await js.connect(f"late{index}", server.url, namespace, auth={"token": token})
        assert reply["ok"] is False and reply["error"]["data"]["code"] == "token_expired"


async def test_a_connect_storm_records_every_user_and_token_changes_reach_known_users(server: RunningServer) -> None:
    """Connects of a burst are recorded per batch (one insert; known users: one read, updates only where the
    token changed something)."""
    clients = await asyncio.gather(*(server.client(f"storm{index}", name=f"Storm {index}", namespace="/notifications")
                                     for index in range(30)))
    records = await server.shared.users.get_many([f"storm{index}" for index in range(30)])
    assert {record.id: record.name for record in records.values()} == {f"storm{index}": f"Storm {index}"
                                                                       for index in range(30)}
    assert all(record.role == "client" and record.last_seen_at is not None for record in records.values())
    await asyncio.gather(*(client.disconnect() for client in clients))
    # the same users again (as after a restart) with a new name for one and an email for another
    await server.client("storm0", name="Renamed", namespace="/notifications")
    await server.client("storm1", name="Storm 1", email="storm1@example.org", namespace="/notifications")
    await server.client("storm2", "therapist", name="Storm 2", namespace="/notifications")
    assert (await server.shared.users.get("storm0")).name == "Renamed"  # type: ignore[union-attr]
    assert await server.shared.users.email_of("storm1") == "storm1@example.org"
    assert (await server.shared.users.get("storm2")).role == "therapist"  # type: ignore[union-attr]
    assert (await server.shared.users.get("storm3")).name == "Storm 3"  # type: ignore[union-attr]
