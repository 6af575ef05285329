"""POST /api/uploads and GET /api/uploads/{id}: streaming limits, content types, encryption, access."""
from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest

from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer, StartServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(64)
ELF = b"\x7fELF\x02\x01\x01\x00" + os.urandom(200)
SECRET_TEXT = "I have been feeling hopeless since March and told nobody.\n"


async def upload(server: RunningServer, content: bytes, filename: str, token: str | None = None,
                 content_type: str = "application/octet-stream") -> tuple[int, Any]:
    form = aiohttp.FormData(quote_fields=False)  # as browsers send it
    form.add_field("file", content, filename=filename, content_type=content_type)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, \
            session.post(server.url + "/api/uploads", data=form, headers=headers) as response:
        return response.status, await response.json()


async def download(server: RunningServer, upload_id: str, token: str) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/api/uploads/{upload_id}",
                           headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.read(), dict(response.headers)


async def stored_counts(server: RunningServer) -> tuple[int, int]:
    db = server.app[MONGO_DB]
    return (await db["uploads"].count_documents({}),  # type: ignore[index]
            await db["uploadfiles.files"].count_documents({}))  # type: ignore[index]


async def test_png_round_trip(server: RunningServer) -> None:
    token = server.token("u1")
    status, body = await upload(server, PNG, "photo.png", token)
    assert status == 201
    assert body["mime"] == "image/png" and body["name"] == "photo.png" and body["size"] == len(PNG)
    assert body["url"] == f"/api/uploads/{body['id']}"
    status, content, headers = await download(server, body["id"], token)
    assert status == 200 and content == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''photo.png"


async def test_png_renamed_pdf_is_detected_as_png(server: RunningServer) -> None:
    status, body = await upload(server, PNG, "report.pdf", server.token("u1"), content_type="application/pdf")
    assert status == 201 and body["mime"] == "image/png" and body["name"] == "report.png"


async def test_executable_is_refused_and_nothing_is_stored(server: RunningServer) -> None:
    status, body = await upload(server, ELF, "cat.png", server.token("u1"), content_type="image/png")
    assert status == 415 and body["error"]["code"] == "invalid_payload"
    assert await stored_counts(server) == (0, 0)


@pytest.mark.parametrize("size", [5000, 25_000])
async def test_oversize_is_413_and_nothing_is_stored(start_server: StartServer, size: int) -> None:
    server = await start_server(upload_max_bytes=20_000 if size > 20_000 else 1000)
    status, body = await upload(server, PNG + b"\x00" * size, "big.png", server.token("u1"))
    assert status == 413 and body["error"]["code"] == "invalid_payload"
    assert await stored_counts(server) == (0, 0)


async def test_text_is_encrypted_at_rest(server: RunningServer) -> None:
    token = server.token("u1")
    status, body = await upload(server, SECRET_TEXT.encode(), "../../etc/my notes?<>.txt", token)
    assert status == 201 and body["mime"] == "text/plain" and body["name"] == "my notes_.txt"
    chunks = server.app[MONGO_DB]["uploadfiles.chunks"]  # type: ignore[index]
    raw = b"".join([doc["data"] async for doc in chunks.find({"files_id": body["id"]})])
    assert raw and b"hopeless" not in raw and b"March" not in raw
    assert (await download(server, body["id"], token))[1] == SECRET_TEXT.encode()


async def test_binary_disguised_as_text_is_refused(server: RunningServer) -> None:
    status, _ = await upload(server, b"hello\x00world" * 10, "a.txt", server.token("u1"), content_type="text/plain")
    assert status == 415


async def test_large_file_spans_many_frames(server: RunningServer) -> None:
    token = server.token("u1")
    content = PNG + os.urandom(3 * 1024 * 1024)
    status, body = await upload(server, content, "scan.png", token)
    assert status == 201 and body["size"] == len(content)
    status, downloaded, _ = await download(server, body["id"], token)
    assert status == 200 and downloaded == content


async def test_strangers_and_anonymous_get_nothing(server: RunningServer) -> None:
    status, body = await upload(server, PNG, "photo.png", server.token("owner"))
    assert status == 201
    stranger = await download(server, body["id"], server.token("stranger"))
    missing = await download(server, "0" * 24, server.token("stranger"))
    assert stranger[0] == missing[0] == 404 and stranger[1] == missing[1]
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/api/uploads/{body['id']}") as response:
        assert response.status == 401
    assert (await upload(server, PNG, "x.png"))[0] == 401
    assert (await upload(server, PNG, "x.png", "not-a-token"))[0] == 401
