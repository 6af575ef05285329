"""Blocks and presence respect the person (issue 17, item 8): presence, typing and receipts never reach a user
in a block with them; an unsolicited direct conversation shows no presence until the other side takes part;
a blocked user cannot put the blocker in a group, and in groups the blocker hears nothing of them."""
from __future__ import annotations

import asyncio

from rest.app_keys import MONGO_DB
from tests.chat.helpers import members, rid, send
from tests.conftest import RunningServer


async def test_an_unsolicited_direct_conversation_shows_no_presence_until_the_other_side_writes(
        server: RunningServer) -> None:
    (stalker,) = await members(server, ("bob", "client"))
    ann = await server.client("ann", "client")
    await ann.disconnect()
    conversation = await stalker.ok("conversation:open", {"memberIds": ["ann"]})
    joined = await stalker.ok("conversation:join", {"conversationId": conversation["id"]})
    assert joined["presence"] == {"bob": "online"}
    ann = await server.client("ann", "client")
    await ann.disconnect()
    await stalker.absent("presence:changed", within=0.4)
    ann = await server.client("ann", "client")
    await send(ann, conversation["id"], "who is this?")
    assert (await stalker.expect("presence:changed"))["userId"] == "ann"
    await ann.disconnect()
    assert (await stalker.expect("presence:changed"))["status"] == "offline"


async def test_after_a_block_presence_typing_and_receipts_stop(server: RunningServer) -> None:
    ann, bob = await members(server, ("ann", "client"), ("bob", "client"))
    conversation = await ann.ok("conversation:open", {"memberIds": ["bob"]})
    cid = conversation["id"]
    for client in (ann, bob):
        await client.ok("conversation:join", {"conversationId": cid})
    message = await send(bob, cid, "hello")
    await ann.ok("user:block", {"userId": "bob"})
    await ann.ok("typing:start", {"conversationId": cid})
    await ann.ok("message:read", {"conversationId": cid, "seq": message["seq"]})
    await bob.absent("typing", within=0.3)
    await bob.absent("receipt:updated", within=0.1)
    await ann.disconnect()
    await asyncio.sleep(0.1)
    await server.client("ann", "client")
    await bob.absent("presence:changed", within=0.4, predicate=lambda data: data["userId"] == "ann")
    joined = await bob.ok("conversation:join", {"conversationId": cid})
    assert "ann" not in joined["presence"]


async def test_a_blocked_user_cannot_put_the_blocker_in_a_group(server: RunningServer) -> None:
    ann, therapist = await members(server, ("ann", "client"), ("dr", "therapist"))
    await members(server, ("carl", "client"))
    await ann.ok("user:block", {"userId": "dr"})
    error = await therapist.error("conversation:open", {"memberIds": ["ann", "carl"], "requestId": rid()},
                                  code="forbidden")
    assert error["message"] == "You cannot start a conversation with this user"
    assert (await therapist.ok("conversation:open", {"memberIds": ["carl"]}))["id"]  # others still fine


async def test_in_a_group_the_blocker_hears_nothing_of_the_blocked_user(server: RunningServer) -> None:
    therapist, ann, bob = await members(server, ("dr", "therapist"), ("ann", "client"), ("bob", "client"))
    group = await therapist.ok("conversation:open", {"memberIds": ["ann", "bob"], "requestId": rid()})
    gid = group["id"]
    for client in (therapist, ann, bob):
        await client.ok("conversation:join", {"conversationId": gid})
    await send(bob, gid, "before")
    for client in (ann, therapist):
        await client.expect("message:created")
    await ann.ok("user:block", {"userId": "bob"})
    await send(bob, gid, "after the block")
    await send(therapist, gid, "from the therapist")
    assert (await therapist.expect("message:created"))["text"] == "after the block"
    assert (await ann.expect("message:created"))["text"] == "from the therapist"
    await ann.absent("message:created", within=0.3)
    await bob.ok("typing:start", {"conversationId": gid})
    await therapist.expect("typing")
    await ann.absent("typing", within=0.2)
    history = await ann.ok("message:history", {"conversationId": gid})
    assert [m["text"] for m in history["items"]] == ["from the therapist"]
    assert history["throughSeq"] == 3
    found = await ann.ok("message:search", {"query": "block"})
    assert found["items"] == []
    assert [m["text"] for m in (await therapist.ok("message:history", {"conversationId": gid}))["items"]] == [
        "before", "after the block", "from the therapist"]
    await ann.ok("conversation:leave", {"conversationId": gid})  # absent members are notified of messages
    await therapist.ok("conversation:leave", {"conversationId": gid})
    await send(bob, gid, "while you were away")
    await server.shared.bus.drain()
    notified = server.app[MONGO_DB]["notifications"]
    assert await notified.count_documents({"userId": "dr", "category": "message"}) == 1
    assert await notified.count_documents({"userId": "ann", "category": "message"}) == 0


async def test_block_lookups_arriving_together_each_get_their_own_answer(server: RunningServer) -> None:
    """Rejoining clients' block lookups are read together (one query), each member still sees its own history."""
    therapist, ann, bob, cy = await members(server, ("dr", "therapist"), ("ann", "client"), ("bob", "client"),
                                            ("cy", "client"))
    group = await therapist.ok("conversation:open", {"memberIds": ["ann", "bob", "cy"], "requestId": rid()})
    gid = group["id"]
    for text, sender in (("from bob", bob), ("from cy", cy), ("from dr", therapist)):
        await send(sender, gid, text)
    await ann.ok("user:block", {"userId": "bob"})  # every cached answer is dropped: the next lookups are cold
    await cy.ok("user:block", {"userId": "dr"})

    pages = await asyncio.gather(*(c.ok("message:history", {"conversationId": gid, "afterSeq": 0})
                                   for c in (therapist, ann, bob, cy)))

    seen = [[m["text"] for m in page["items"]] for page in pages]
    assert seen == [["from bob", "from dr"], ["from cy", "from dr"], ["from bob", "from cy", "from dr"],
                    ["from bob", "from cy"]]
