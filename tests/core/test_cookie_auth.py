"""Cookie sessions for browsers (issue 19): the JWT in an httpOnly cookie, accepted only from CORS_ORIGINS,
state-changing REST requests with a double-submit CSRF token; Bearer and auth.token unchanged."""
from __future__ import annotations

import aiohttp
import pytest
import socketio

from config import Config, ConfigError
from tests.chat.helpers import send
from tests.clients import SioClient
from tests.conftest import RunningServer, StartServer
from tests.uploads.test_uploads import PNG

APP = "https://app.example"
COOKIE = "careline_session"


@pytest.fixture
async def app(start_server: StartServer) -> RunningServer:
    return await start_server(auth_cookie_name=COOKIE, cors_origins=APP)


def cookie_headers(server: RunningServer, sub: str, origin: str | None = APP, csrf: str | None = None,
                   ttl: int = 3600) -> dict[str, str]:
    jar = f"{COOKIE}={server.token(sub, ttl=ttl)}" + (f"; careline_csrf={csrf}" if csrf else "")
    return {"Cookie": jar, **({"Origin": origin} if origin else {})}


async def cookie_client(server: RunningServer, sub: str, origin: str | None = APP, ttl: int = 3600) -> SioClient:
    client = SioClient(server.url, "/chat")
    await client.connect(headers=cookie_headers(server, sub, origin, ttl=ttl))
    server.clients.append(client)
    return client


def test_cookie_auth_needs_listed_origins() -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Config.from_env({"JWT_SECRET": "x" * 40, "AUTH_COOKIE_NAME": COOKIE})


async def test_a_listed_origin_connects_with_the_cookie_alone(app: RunningServer) -> None:
    alice = await cookie_client(app, "alice")
    assert (await alice.ok("conversation:list", {}))["items"] == []
    bearer = await app.client("bob")  # auth.token still works
    assert await bearer.ok("conversation:list", {}) is not None


@pytest.mark.parametrize("origin", ["https://evil.example", None])
async def test_another_origin_or_none_is_refused_at_the_handshake(app: RunningServer, origin: str | None) -> None:
    client = SioClient(app.url, "/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(headers=cookie_headers(app, "alice", origin))
    if origin is None:  # another origin is refused earlier still: by the Engine.IO handshake's CORS check
        assert client.connect_error["data"]["code"] == "unauthorized", client.connect_error


async def test_without_cookie_auth_configured_the_cookie_is_ignored(server: RunningServer) -> None:
    client = SioClient(server.url, "/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(headers={"Cookie": f"{COOKIE}={server.token('alice')}", "Origin": APP})


async def post_upload(server: RunningServer, headers: dict[str, str]) -> tuple[int, dict]:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", PNG, filename="p.png", content_type="image/png")
    async with aiohttp.ClientSession() as http, http.post(server.url + "/api/uploads", data=form,
                                                          headers=headers) as reply:
        return reply.status, await reply.json()


async def test_rest_with_the_cookie_needs_origin_and_csrf(app: RunningServer) -> None:
    good = cookie_headers(app, "alice", csrf="t0k3n")
    status, upload = await post_upload(app, {**good, "X-CSRF-Token": "t0k3n"})
    assert status == 201
    for headers in ({**good}, {**good, "X-CSRF-Token": "wrong"}, {**cookie_headers(app, "alice"), "X-CSRF-Token": ""},
                    {**cookie_headers(app, "alice", "https://evil.example", csrf="t"), "X-CSRF-Token": "t"}):
        status, body = await post_upload(app, headers)
        assert status == 403 and body["error"]["code"] == "forbidden", headers
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{app.url}/api/uploads/{upload['id']}", headers=cookie_headers(app, "alice")) as reply:
            assert reply.status == 200  # a GET needs no CSRF token
        async with http.get(f"{app.url}/api/uploads/{upload['id']}",
                            headers=cookie_headers(app, "alice", "https://evil.example")) as reply:
            assert reply.status == 403
    status, _ = await post_upload(app, {"Authorization": f"Bearer {app.token('alice')}"})  # Bearer unchanged
    assert status == 201


async def test_a_cookie_session_ends_at_expiry_and_catches_up_after_reconnecting(app: RunningServer) -> None:
    alice = await cookie_client(app, "alice", ttl=2)
    bob = await app.client("bob", "therapist")
    conversation = await bob.ok("conversation:open", {"memberIds": ["alice"]})
    first = await send(bob, conversation["id"], "before expiry")
    expired = await alice.expect("session:expired", timeout=5)
    assert expired["code"] == "token_expired"
    await alice.expect("disconnect", timeout=3)
    missed = await send(bob, conversation["id"], "while away")
    again = await cookie_client(app, "alice")  # the platform refreshed the cookie meanwhile
    history = await again.ok("message:history", {"conversationId": conversation["id"], "afterSeq": first["seq"]})
    assert [message["id"] for message in history["items"]] == [missed["id"]]
