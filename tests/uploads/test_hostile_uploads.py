"""Uploads against hostile input (issue 17, item 6): bad names and bodies are 400, never 500 nor a logged
file name; a per-user hourly quota; orphans swept; a deleted message's files gone; signed short-lived links."""
from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import pytest

from clock import utcnow
from tests.chat.helpers import direct, send
from tests.conftest import RunningServer, StartServer
from tests.uploads.test_uploads import PNG, download, stored_counts, upload


def raw_multipart(filename: bytes) -> bytes:
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + b"\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--XyZ--\r\n")


async def post_raw(server: RunningServer, body: bytes, token: str,
                   content_type: str = "multipart/form-data; boundary=XyZ") -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/api/uploads", data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("name", [b"a\x00b.png", b"evil\r\nX-Injected: 1.png", b"n" * 10_000 + b".png"])
async def test_bad_file_names_are_refused_and_never_logged(server: RunningServer, name: bytes,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    status, body = await post_raw(server, raw_multipart(name), server.token("u1"))
    assert status == 400 and body["error"]["code"] == "invalid_payload"
    assert await stored_counts(server) == (0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Injected" not in caplog.text and "nnnnnnnn" not in caplog.text


@pytest.mark.parametrize("body", [b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n" + b"h" * 9000,
                                  b"garbage without any boundary", b""])
async def test_broken_multipart_bodies_are_400(server: RunningServer, body: bytes,
                                               caplog: pytest.LogCaptureFixture) -> None:
    status, reply = await post_raw(server, body, server.token("u1"))
    assert status == 400 and reply["error"]["code"] == "invalid_payload"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_hourly_quota_per_user(start_server: StartServer) -> None:
    server = await start_server(upload_quota_files_per_hour=3, upload_quota_bytes_per_hour=10 * len(PNG))
    token = server.token("u1")
    for index in range(3):
        assert (await upload(server, PNG, f"p{index}.png", token))[0] == 201
    status, body = await upload(server, PNG, "p3.png", token)
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["retryAfterMs"] > 0
    assert (await upload(server, PNG, "other.png", server.token("u2")))[0] == 201  # per user
    server.clock.source = lambda: utcnow() + timedelta(hours=1, minutes=1)
    assert (await upload(server, PNG, "later.png", token))[0] == 201


async def test_the_byte_quota_counts_what_was_uploaded(start_server: StartServer) -> None:
    server = await start_server(upload_quota_bytes_per_hour=2 * len(PNG) + 10)
    token = server.token("u1")
    assert (await upload(server, PNG, "a.png", token))[0] == 201
    assert (await upload(server, PNG, "b.png", token))[0] == 201
    status, body = await upload(server, PNG, "c.png", token)
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert await stored_counts(server) == (2, 2)


async def test_orphans_are_swept_and_attached_files_kept(server: RunningServer) -> None:
    alice, _, conversation = await direct(server)
    token = server.token("alice")
    _, kept = await upload(server, PNG, "kept.png", token)
    _, orphan = await upload(server, PNG, "orphan.png", token)
    await send(alice, conversation["id"], "see", attachmentIds=[kept["id"]])
    server.clock.source = lambda: utcnow() + timedelta(hours=25)
    assert await server.chat.uploads.sweep_orphans() == 1
    assert (await download(server, orphan["id"], token))[0] == 404
    assert (await download(server, kept["id"], token))[0] == 200
    assert await stored_counts(server) == (1, 1)


async def test_a_deleted_messages_files_are_deleted(server: RunningServer) -> None:
    alice, _, conversation = await direct(server)
    _, file = await upload(server, PNG, "photo.png", server.token("alice"))
    message = await send(alice, conversation["id"], "photo", attachmentIds=[file["id"]])
    assert (await download(server, file["id"], server.token("bob", "therapist")))[0] == 200
    await alice.ok("message:delete", {"messageId": message["id"]})
    for user in (server.token("alice"), server.token("bob", "therapist")):
        assert (await download(server, file["id"], user))[0] == 404
    assert await stored_counts(server) == (0, 0)


async def test_signed_links_are_short_lived_and_bound_to_one_user_and_file(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    _, file = await upload(server, PNG, "photo.png", server.token("alice"))
    _, other = await upload(server, PNG, "other.png", server.token("alice"))
    await send(alice, conversation["id"], "photo", attachmentIds=[file["id"]])
    link = await bob.ok("upload:link", {"uploadId": file["id"]})
    assert link["url"].startswith(f"/api/uploads/{file['id']}?") and link["expiresAt"].endswith("Z")
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + link["url"]) as response:  # no token: like <img src>
            assert response.status == 200 and await response.read() == PNG
        tampered = link["url"].replace(file["id"], other["id"])
        async with session.get(server.url + tampered) as response:
            assert response.status == 404
        forged = link["url"][:-4] + ("0000" if not link["url"].endswith("0000") else "1111")
        async with session.get(server.url + forged) as response:
            assert response.status == 404
        server.clock.source = lambda: utcnow() + timedelta(minutes=6)
        async with session.get(server.url + link["url"]) as response:
            assert response.status == 404
    await bob.error("upload:link", {"uploadId": other["id"]}, code="not_found")  # not shared with bob
    stranger = await server.client("eve", "client")
    await stranger.error("upload:link", {"uploadId": file["id"]}, code="not_found")
