"""The official socket.io-client through a full chat flow, and attachments from uploads."""
from __future__ import annotations

from tests.chat.helpers import direct, rid, send
from tests.clients import JsDriver
from tests.conftest import RunningServer
from tests.uploads.test_uploads import PNG, download, upload


def _ok(ack: dict) -> dict:  # type: ignore[type-arg]
    assert ack["ok"] is True, ack
    return ack["data"]  # type: ignore[no-any-return]


async def test_js_client_full_flow(server: RunningServer, js: JsDriver) -> None:
    for name, role in (("alice", "client"), ("bob", "therapist")):
        reply = await js.connect(name, server.url, "/chat", auth={"token": server.token(name, role)})
        assert reply["ok"] is True, reply
    conversation = _ok(await js.emit("alice", "conversation:open", {"memberIds": ["bob"]}))
    cid = conversation["id"]
    first = _ok(await js.emit("alice", "conversation:join", {"conversationId": cid}))
    assert first["presence"] == {"alice": "online"}  # bob's presence shows once he joins or writes
    joined = _ok(await js.emit("bob", "conversation:join", {"conversationId": cid}))
    assert joined["presence"] == {"alice": "online", "bob": "online"}
    message = _ok(await js.emit("alice", "message:send", {"conversationId": cid, "text": "Hi Bob 👋",
                                                          "requestId": "js-1"}))
    assert await js.expect("bob:message:created") == message
    reacted = _ok(await js.emit("bob", "message:react", {"messageId": message["id"], "emoji": "❤️"}))
    assert reacted == {"messageId": message["id"], "reactions": {"❤️": ["bob"]}}
    assert (await js.expect("alice:message:reactions"))["reactions"] == {"❤️": ["bob"]}
    edited = _ok(await js.emit("alice", "message:edit", {"messageId": message["id"], "text": "Hi Bob!"}))
    assert (await js.expect("bob:message:updated")) == edited and edited["editedAt"]
    assert _ok(await js.emit("bob", "message:read", {"conversationId": cid, "seq": message["seq"]})) == {}
    assert await js.expect("alice:receipt:updated") == {"conversationId": cid, "userId": "bob",
                                                        "deliveredSeq": 1, "readSeq": 1}
    _ok(await js.emit("bob", "typing:start", {"conversationId": cid}))
    assert (await js.expect("alice:typing"))["isTyping"] is True
    assert _ok(await js.emit("alice", "message:delete", {"messageId": message["id"]})) == {"messageId": message["id"]}
    assert await js.expect("bob:message:deleted") == {"conversationId": cid, "messageId": message["id"]}
    history = _ok(await js.emit("bob", "message:history", {"conversationId": cid}))
    assert history["items"][0]["deleted"] is True and history["items"][0]["text"] == ""
    bad = await js.emit("bob", "message:send", {"conversationId": cid, "requestId": "x"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"


async def test_attachments_are_the_senders_own_uploads(server: RunningServer) -> None:
    alice, bob, conversation = await direct(server)
    status, mine = await upload(server, PNG, "scan.png", server.token("alice"))
    assert status in (200, 201), mine
    _, theirs = await upload(server, PNG, "other.png", server.token("bob", "therapist"))
    status, _body, _headers = await download(server, mine["id"], server.token("bob", "therapist"))
    assert status == 404  # not sent anywhere yet
    await alice.error("message:send", {"conversationId": conversation["id"], "attachmentIds": [theirs["id"]],
                                       "requestId": rid()}, code="invalid_payload")
    message = await alice.ok("message:send", {"conversationId": conversation["id"], "attachmentIds": [mine["id"]],
                                              "requestId": rid()})
    assert message["text"] == "" and message["attachments"] == [mine]
    assert (await bob.expect("message:created"))["attachments"] == [mine]
    status, body, _headers = await download(server, mine["id"], server.token("bob", "therapist"))
    assert status == 200 and body == PNG
    status, _body, _headers = await download(server, mine["id"], server.token("carol"))
    assert status == 404
    both = await send(alice, conversation["id"], "with text too", attachmentIds=[mine["id"], mine["id"]])
    assert both["attachments"] == [mine] and both["text"] == "with text too"
