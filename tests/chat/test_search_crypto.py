"""Encryption at rest and search over the blind index (also across a key rotation)."""
from __future__ import annotations

import base64
from typing import Any

import bson

from rest.app_keys import MONGO_DB
from tests.chat.helpers import direct, members, send
from tests.conftest import MESSAGE_KEYS, RunningServer, StartServer

SECRET = "Zebrafish appointment Thursday"


def _contains(doc: Any, needle: bytes) -> bool:
    return needle in bson.encode(doc)


async def test_stored_message_holds_no_plaintext(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], SECRET)
    await alice.ok("message:edit", {"messageId": message["id"], "text": SECRET + " edited Quokka"})
    raw = await server.app[MONGO_DB]["chat_messages"].find_one({"_id": message["id"]})  # type: ignore[index]
    for word in ("Zebrafish", "zebrafish", "appointment", "Thursday", "Quokka", "quokka"):
        assert not _contains(raw, word.encode()), word
    assert set(raw["text"]) == {"kid", "n", "c"} and raw["text"]["kid"] == "k1"
    assert len(raw["history"]) == 1 and set(raw["history"][0]["text"]) == {"kid", "n", "c"}
    assert raw["tkid"] == "k1" and len(raw["tokens"]) == 5
    # The ciphertext is bound to its message: moved onto another message it does not open.
    other = await send(alice, conversation["id"], "other")
    coll = server.app[MONGO_DB]["chat_messages"]  # type: ignore[index]
    await coll.update_one({"_id": other["id"]}, {"$set": {"text": raw["text"]}})
    items = (await alice.ok("message:history", {"conversationId": conversation["id"]}))["items"]
    assert [m["text"] for m in items] == [SECRET + " edited Quokka", ""]


async def test_search_any_order_and_case_only_own_conversations(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    carol, dave = await members(server, ("carol", "client"), ("dave", "therapist"))
    theirs = await dave.ok("conversation:open", {"memberIds": ["carol"]})
    hit = await send(alice, conversation["id"], "See you at the CLINIC on Monday, okay?")
    newer = await send(bob, conversation["id"], "monday works; the clinic it is!")
    await send(bob, conversation["id"], "unrelated")
    await send(carol, theirs["id"], "clinic monday secret")
    found = await alice.ok("message:search", {"query": "monday Clinic"})
    assert [m["id"] for m in found["items"]] == [newer["id"], hit["id"]]
    assert found["items"][1]["text"] == hit["text"]
    assert [m["id"] for m in (await bob.ok("message:search", {"query": "ＣＬＩＮＩＣ, okay"}))["items"]] == [hit["id"]]
    assert (await alice.ok("message:search", {"query": "clinic tuesday"}))["items"] == []
    assert [m["text"] for m in (await carol.ok("message:search", {"query": "clinic"}))["items"]] == [
        "clinic monday secret"]
    limited = await alice.ok("message:search", {"query": "clinic", "limit": 1})
    assert [m["id"] for m in limited["items"]] == [newer["id"]]
    scoped = await alice.ok("message:search", {"query": "clinic", "conversationId": conversation["id"]})
    assert len(scoped["items"]) == 2
    await alice.error("message:search", {"query": "clinic", "conversationId": theirs["id"]}, code="not_found")
    await alice.error("message:search", {"query": "?!"}, code="invalid_payload")
    await alice.error("message:delete", {"messageId": newer["id"]}, code="forbidden")
    await bob.ok("message:delete", {"messageId": newer["id"]})
    after = await alice.ok("message:search", {"query": "clinic monday"})
    assert [m["id"] for m in after["items"]] == [hit["id"]]


async def test_search_follows_edits(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    message = await send(alice, conversation["id"], "meet at noon")
    await alice.ok("message:edit", {"messageId": message["id"], "text": "meet at dusk"})
    assert (await alice.ok("message:search", {"query": "noon"}))["items"] == []
    assert [m["id"] for m in (await alice.ok("message:search", {"query": "DUSK"}))["items"]] == [message["id"]]


async def test_old_messages_stay_readable_and_searchable_after_key_rotation(start_server: StartServer,
                                                                             test_env: dict[str, str]) -> None:
    before = await start_server()
    alice, _bob, conversation = await direct(before)
    old = await send(alice, conversation["id"], "rotation canary")
    await before.stop()
    new_key = "k2:" + base64.urlsafe_b64encode(b"B" * 32).decode().rstrip("=")
    after = await start_server(env={**test_env, "MESSAGE_KEYS": f"{new_key},{MESSAGE_KEYS}"})
    alice = await after.client("alice")
    new = await send(alice, conversation["id"], "canary after rotation")
    raw = await after.app[MONGO_DB]["chat_messages"].find_one({"_id": new["id"]})  # type: ignore[index]
    assert raw["text"]["kid"] == "k2" and raw["tkid"] == "k2"
    found = await alice.ok("message:search", {"query": "rotation canary"})
    assert [m["id"] for m in found["items"]] == [new["id"], old["id"]]
    assert found["items"][1]["text"] == "rotation canary"
