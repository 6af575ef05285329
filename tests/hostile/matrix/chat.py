"""Matrix rows of /chat: the owner's direct conversation with the party, a message with a file, a report."""
from __future__ import annotations

from typing import Any

import aiohttp

from tests.hostile.matrix import FB, NF, OK, Maker, Row, World, codes, row
from tests.uploads.test_uploads import PNG

MEMBERS = codes(OK, OK, NF, NF, NF)            # members of the owner's direct conversation
SENDER = codes(OK, FB, NF, NF, NF)             # the message's author (the party is a member, not its author)
ADMINS = codes(FB, FB, FB, FB, OK)


async def make_conversation(world: World) -> None:
    owner = await world.client("owner", "/chat")
    world.ids["conversation"] = (await owner.ok("conversation:open", {"memberIds": [world.user("party")]}))["id"]


async def make_message(world: World) -> None:
    """A message of the owner carrying an upload, in the conversation."""
    await make_conversation(world)
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("file", PNG, filename="scan.png", content_type="image/png")
        headers = {"Authorization": f"Bearer {world.server.token(world.user('owner'))}"}
        async with http.post(world.server.url + "/api/uploads", data=form, headers=headers) as reply:
            world.ids["upload"] = (await reply.json())["id"]
    owner = await world.client("owner", "/chat")
    message = await owner.ok("message:send", {"conversationId": world.ids["conversation"], "text": "hello",
                                              "attachmentIds": [world.ids["upload"]], "requestId": "m"})
    world.ids["message"] = message["id"]


async def make_report(world: World) -> None:
    await make_message(world)
    owner = await world.client("owner", "/chat")
    report = await owner.ok("message:report", {"messageId": world.ids["message"], "reason": "t"})
    world.ids["report"] = report["reportId"]


MAKERS: dict[str, Maker] = {"conversation": make_conversation, "message": make_message, "upload": make_message,
                            "report": make_report}


def conversation(w: World) -> dict[str, Any]:
    return {"conversationId": w.ids["conversation"]}


def message(w: World) -> dict[str, Any]:
    return {"messageId": w.ids["message"]}


ROWS: dict[tuple[str, str], Row] = {
    ("/chat", "conversation:join"): row("conversation", conversation, MEMBERS),
    ("/chat", "conversation:leave"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:send"): row("conversation", lambda w: {**conversation(w), "text": "x", "requestId": "r"},
                                   MEMBERS),
    ("/chat", "message:history"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:search"): row("conversation", lambda w: {**conversation(w), "query": "hello"}, MEMBERS),
    ("/chat", "message:read"): row("conversation", lambda w: {**conversation(w), "seq": 1}, MEMBERS),
    ("/chat", "message:delivered"): row("conversation", lambda w: {**conversation(w), "seq": 1}, MEMBERS),
    ("/chat", "typing:start"): row("conversation", conversation, MEMBERS),
    ("/chat", "typing:stop"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:edit"): row("message", lambda w: {**message(w), "text": "changed"}, SENDER),
    ("/chat", "message:delete"): row("message", message, codes(OK, FB, NF, NF, OK)),
    ("/chat", "message:react"): row("message", lambda w: {**message(w), "emoji": "👍"}, MEMBERS),
    ("/chat", "message:report"): row("message", lambda w: {**message(w), "reason": "x"}, MEMBERS),
    ("/chat", "report:resolve"): row("report", lambda w: {"reportId": w.ids["report"]}, ADMINS),
    ("/chat", "upload:link"): row("upload", lambda w: {"uploadId": w.ids["upload"]}, MEMBERS),
    # opening a direct conversation with anyone, and blocking anyone, is allowed (not oneself)
    ("/chat", "conversation:open"): row("", lambda w: {"memberIds": [w.user("owner")]},
                                        codes("invalid_payload", OK, OK, OK, OK)),
    ("/chat", "user:block"): row("", lambda w: {"userId": w.user("owner")}, codes("invalid_payload", OK, OK, OK, OK)),
    ("/chat", "user:unblock"): row("", lambda w: {"userId": w.user("owner")}, codes(OK, OK, OK, OK, OK)),
}
