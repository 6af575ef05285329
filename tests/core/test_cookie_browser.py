"""Cookie sessions from a real browser (issue 19): headless Chromium on a page of an allowed origin connects
with the official socket.io-client without passing a token and uploads with the CSRF header; the same
cookies on a page of another origin are refused at the handshake and on upload."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from rest.app_keys import MONGO_DB
from tests.clients import JS_DIR, StaticPages
from tests.conftest import RunningServer, StartServer

pytestmark = [pytest.mark.js]
PAGE = Path(__file__).parent / "pages" / "cookie_session.html"


async def open_page(page: str, server: RunningServer, cookies: list[dict[str, Any]]) -> dict[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is required: scripts/test installs it (apt-get install chromium)")
    browser = await asyncio.create_subprocess_exec(
        "node", str(JS_DIR / "page_state.mjs"), f"{page}/?{urlencode({'server': server.url})}", "20000",
        json.dumps(cookies), cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, env={**os.environ, "CHROMIUM": chromium})
    out, _ = await asyncio.wait_for(browser.communicate(), 60)
    return json.loads(out)  # type: ignore[no-any-return]


async def test_a_browser_session_in_an_httponly_cookie(start_server: StartServer, static_pages: StaticPages) -> None:
    allowed, other = await static_pages.serve(PAGE), await static_pages.serve(PAGE)
    server = await start_server(auth_cookie_name="careline_session", cors_origins=allowed)
    cookies = [{"name": "careline_session", "value": server.token("ann"), "url": server.url, "httpOnly": True},
               {"name": "careline_csrf", "value": "csrf-7f3a", "url": server.url}]
    uploads = server.app[MONGO_DB]["uploads"]

    state = await open_page(allowed, server, cookies)
    assert state["connected"] is True and state["listed"] is True and state["connectError"] is None, state
    assert state["upload"]["status"] == 201, state
    assert await uploads.count_documents({"ownerId": "ann"}) == 1

    refused = await open_page(other, server, cookies)
    assert refused["connected"] is False and refused["connectError"], refused
    assert refused["upload"]["status"] in (0, 403), refused  # the CORS preflight fails, or careline refuses
    assert await uploads.count_documents({"ownerId": "ann"}) == 1
