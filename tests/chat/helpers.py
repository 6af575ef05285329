"""Shared steps of the chat tests: connected members, a conversation, a message."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.clients import SioClient
from tests.conftest import RunningServer

_ids = itertools.count(1)


def rid() -> str:
    """A fresh requestId."""
    return f"r{next(_ids)}"


async def members(server: RunningServer, *specs: tuple[str, str]) -> list[SioClient]:
    """Connected /chat clients, one per (user id, role)."""
    return [await server.client(sub, role) for sub, role in specs]


async def direct(server: RunningServer, a: str = "alice", a_role: str = "client", b: str = "bob",
                 b_role: str = "therapist", join: bool = True) -> tuple[SioClient, SioClient, dict[str, Any]]:
    """Two connected members and their direct conversation (both sockets joined by default)."""
    ca, cb = await members(server, (a, a_role), (b, b_role))
    conversation = await ca.ok("conversation:open", {"memberIds": [b]})
    if join:
        for client in (ca, cb):
            await client.ok("conversation:join", {"conversationId": conversation["id"]})
    return ca, cb, conversation


async def send(client: SioClient, conversation_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    """Send a text message and return the Message."""
    return await client.ok("message:send", {"conversationId": conversation_id, "text": text, "requestId": rid(),
                                            **extra})


async def catch_up(client: SioClient, conversation_id: str, after: int = 0,
                   attempts: int = 60) -> list[dict[str, Any]]:
    """Every message after seq `after`, as a reconnecting client reads them (`message:history {afterSeq}`).

    A send that failed leaves a seq gap; catch-up waits at a gap younger than 5 s (a message might
    still be written into it), so a short page means: ask again shortly.
    """
    items: list[dict[str, Any]] = []
    for _ in range(attempts):
        page = await client.ok("message:history", {"conversationId": conversation_id, "afterSeq": after,
                                                   "limit": 100})
        items += page["items"]
        if not page["hasMore"]:
            return items
        if page["items"]:
            after = page["items"][-1]["seq"]
        else:
            await asyncio.sleep(0.5)
    raise AssertionError("catch-up did not finish")
