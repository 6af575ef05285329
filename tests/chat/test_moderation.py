"""Blocking, reports and the admin review list, the blocklist, crisis alerts, and strangers refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from rest.app_keys import MONGO_DB
from tests.chat.helpers import direct, members, rid, send
from tests.conftest import RunningServer, StartServer


async def test_block_stops_open_and_send_but_history_stays(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server, "alice", "client", "bob", "client")
    cid = conversation["id"]
    await send(bob, cid, "before the block")
    assert await alice.ok("user:block", {"userId": "bob"}) == {}
    await bob.error("message:send", {"conversationId": cid, "text": "hey", "requestId": rid()}, code="forbidden")
    await bob.error("conversation:open", {"memberIds": ["alice"]}, code="forbidden")
    history = await bob.ok("message:history", {"conversationId": cid})
    assert [m["text"] for m in history["items"]] == ["before the block"]
    assert (await send(alice, cid, "I can still write"))["seq"] == 2
    await alice.error("user:block", {"userId": "alice"}, code="invalid_payload")
    assert await alice.ok("user:unblock", {"userId": "bob"}) == {}
    assert (await send(bob, cid, "thanks"))["seq"] == 3
    assert await alice.ok("user:unblock", {"userId": "nobody"}) == {}


async def test_block_does_not_apply_to_groups(server: RunningServer) -> None:
    staff, c1, _c2 = await members(server, ("t1", "therapist"), ("c1", "client"), ("c2", "client"))
    group = await staff.ok("conversation:open", {"memberIds": ["c1", "c2"]})
    await staff.ok("user:block", {"userId": "c1"})
    assert (await send(c1, group["id"], "in the group"))["seq"] == 1


async def test_report_goes_to_the_admin_review_list(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    admin = await server.client("root", "admin")
    message = await send(bob, conversation["id"], "something inappropriate")
    report = await alice.ok("message:report", {"messageId": message["id"], "reason": "harassment"})
    again = await alice.ok("message:report", {"messageId": message["id"], "reason": "harassment"})
    assert again == report and set(report) == {"reportId"}
    created = await admin.expect("report:created")
    assert created["id"] == report["reportId"] and created["reporterId"] == "alice"
    await alice.error("report:list", {}, code="forbidden")
    listed = await admin.ok("report:list", {})
    (item,) = listed["items"]
    assert item["id"] == report["reportId"] and item["reason"] == "harassment" and item["status"] == "open"
    assert item["message"]["text"] == "something inappropriate" and listed["nextCursor"] is None
    await alice.error("message:report", {"messageId": message["id"], "reason": ""}, code="invalid_payload")
    resolved = await admin.ok("report:resolve", {"reportId": report["reportId"]})
    assert resolved["status"] == "resolved"
    assert (await admin.ok("report:list", {}))["items"] == []
    assert len((await admin.ok("report:list", {"status": "resolved"}))["items"]) == 1
    await admin.error("report:resolve", {"reportId": "missing"}, code="not_found")


@pytest.fixture
def rule_files(tmp_path: Path) -> dict[str, str]:
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("# slurs and spam\nbuy\\s+cheap\\s+pills\n\\bidiot\\b\n")
    crisis = tmp_path / "crisis.txt"
    crisis.write_text("# phrases\nkill myself\nend it all\n")
    return {"chat_blocklist_file": str(blocklist), "chat_crisis_phrases_file": str(crisis)}


async def test_blocklist_refuses_matching_text(start_server: StartServer, rule_files: dict[str, str]) -> None:
    server = await start_server(**rule_files)
    alice, _bob, conversation = await direct(server)
    for text in ("BUY   cheap pills now", "you IDIOT", "ｉｄｉｏｔ"):
        await alice.error("message:send", {"conversationId": conversation["id"], "text": text, "requestId": rid()},
                          code="precondition_failed")
    ok = await send(alice, conversation["id"], "idiotic plans aside")
    await alice.error("message:edit", {"messageId": ok["id"], "text": "you idiot"}, code="precondition_failed")
    assert await server.app[MONGO_DB]["chat_messages"].count_documents({}) == 1  # type: ignore[index]


async def test_crisis_phrase_alerts_staff_and_never_silences(start_server: StartServer,
                                                             rule_files: dict[str, str]) -> None:
    server = await start_server(**rule_files)
    client, therapist, conversation = await direct(server, "alice", "client", "bob", "therapist")
    admin, other = await members(server, ("root", "admin"), ("t-other", "therapist"))
    ack = await send(client, conversation["id"], "Some days I want to END it all.")
    assert ack["safetyResources"] == server.config.chat_safety_resources
    received = await therapist.expect("message:created")
    assert received["text"] == "Some days I want to END it all." and "safetyResources" not in received
    alert = {"conversationId": conversation["id"], "messageId": ack["id"], "userId": "alice"}
    assert await therapist.expect("safety:alert") == alert
    assert await admin.expect("safety:alert") == alert
    await admin.absent("safety:alert", within=0.2)
    await other.absent("safety:alert", within=0.05)
    await client.absent("safety:alert", within=0.05)
    calm = await send(client, conversation["id"], "I will kill it at myself-care")
    assert "safetyResources" not in calm


async def test_strangers_are_refused_on_every_request(server: RunningServer) -> None:
    alice, _bob, conversation = await direct(server)
    stranger = await server.client("mallory", "client")
    cid = conversation["id"]
    message = await send(alice, cid, "private")
    for event, payload in [
        ("conversation:join", {"conversationId": cid}),
        ("conversation:leave", {"conversationId": cid}),
        ("message:send", {"conversationId": cid, "text": "x", "requestId": rid()}),
        ("message:edit", {"messageId": message["id"], "text": "x"}),
        ("message:delete", {"messageId": message["id"]}),
        ("message:react", {"messageId": message["id"], "emoji": "👍"}),
        ("message:history", {"conversationId": cid}),
        ("message:search", {"query": "private", "conversationId": cid}),
        ("message:read", {"conversationId": cid, "seq": 1}),
        ("message:delivered", {"conversationId": cid, "seq": 1}),
        ("message:report", {"messageId": message["id"], "reason": "x"}),
        ("typing:start", {"conversationId": cid}),
        ("typing:stop", {"conversationId": cid}),
    ]:
        known = await stranger.error(event, payload, code="not_found")
        unknown_payload = {k: ("missing-id" if k in ("conversationId", "messageId") else v)
                           for k, v in payload.items()}
        assert await stranger.error(event, unknown_payload, code="not_found") == known, event
    assert (await stranger.ok("message:search", {"query": "private"}))["items"] == []
    assert (await stranger.ok("conversation:list", {}))["items"] == []
    history = await alice.ok("message:history", {"conversationId": cid})
    assert [(m["text"], m["reactions"]) for m in history["items"]] == [("private", {})]
    await stranger.absent("message:created", within=0.05)
    assert await server.chat.member_of_any("mallory", [cid]) is False
    assert await server.chat.member_of_any("alice", ["nope", cid]) is True


async def test_only_admins_list_and_resolve_reports(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    message = await send(bob, conversation["id"], "something")
    report = await alice.ok("message:report", {"messageId": message["id"], "reason": "spam"})
    for caller in (alice, bob, await server.client("t9", "therapist")):
        await caller.error("report:resolve", {"reportId": report["reportId"]}, code="forbidden")
        await caller.error("report:list", {}, code="forbidden")
    admin = await server.client("root", "admin")
    listed = await admin.ok("report:list", {"status": "open"})
    assert [item["id"] for item in listed["items"]] == [report["reportId"]]  # still open
