"""Consent-gated recording, the audit log, Jitsi room tokens and TURN credentials, through a real server."""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import jwt

from rest.app_keys import MONGO_DB
from tests.conftest import StartServer
from tests.meetings.helpers import END, NS, START, audit_actions, booked_meeting, in_room


async def test_recording_needs_every_consent_and_stops_when_one_is_missing(start_server: StartServer) -> None:
    server = await start_server()
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    mid = {"meetingId": session.meeting_id}
    error = await h.error("recording:start", mid, "precondition_failed")
    assert sorted(error["details"]["missing"]) == ["c1", "t1"]
    await g.error("recording:start", mid, "forbidden")
    await h.ok("recording:consent", {**mid, "consent": True})
    error = await h.error("recording:start", mid, "precondition_failed")
    assert error["details"]["missing"] == ["c1"]
    await g.ok("recording:consent", {**mid, "consent": True})
    recording = await h.ok("recording:start", mid)
    assert recording["startedBy"] == "t1" and sorted(recording["consents"]) == ["c1", "t1"]
    assert recording["stoppedAt"] is None
    status = await g.expect("recording:status", lambda d: d["state"] == "recording")
    assert status["consents"] == {"c1": True, "t1": True} and status["recordingId"] == recording["id"]
    await h.error("recording:start", mid, "conflict")

    await g.ok("recording:consent", {**mid, "consent": False})  # withdrawn: stops at once
    stopped = await h.expect("recording:status", lambda d: d["state"] == "stopped")
    assert stopped["consents"] == {"c1": False, "t1": True}
    stored = await server.app[MONGO_DB]["meeting_recordings"].find_one({"_id": recording["id"]})
    assert stored["stoppedAt"] is not None and stored["stopReason"] == "consent_missing"
    await h.error("recording:stop", mid, "precondition_failed")

    # Admitting someone who has not consented while recording stops it too.
    await g.ok("recording:consent", {**mid, "consent": True})
    second = await h.ok("recording:start", mid)
    await h.ok("participant:kick", {**mid, "userId": "c1"})
    await g.ok("meeting:join", mid)
    await g.ok("recording:consent", {**mid, "consent": False})
    assert (await h.ok("recording:list", mid))["items"][1]["stoppedAt"] is None  # c1 is not in: it goes on
    await h.ok("lobby:admit", {**mid, "userId": "c1"})
    listed = await g.ok("recording:list", mid)
    assert [r["id"] for r in listed["items"]] == [recording["id"], second["id"]]
    assert listed["items"][1]["stoppedAt"] is not None and listed["items"][1]["stopReason"] == "consent_missing"

    await g.ok("recording:consent", {**mid, "consent": True})
    await h.ok("recording:start", mid)
    assert (await h.ok("recording:stop", mid))["stopReason"] == "stopped"
    outsider = await server.client("c2", "client", NS)
    await outsider.error("recording:list", mid, "not_found")

    await server.shared.bus.drain()
    notes = server.app[MONGO_DB]["notifications"]
    assert await notes.count_documents({"title": "Recording started", "userId": "c1"}) == 3


async def test_every_action_is_in_the_audit_log_which_only_host_and_admins_read(start_server: StartServer) -> None:
    server = await start_server()
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    mid = {"meetingId": session.meeting_id}
    await h.ok("participant:mute", {**mid, "userId": "c1", "kind": "video"})
    for user in (h, g):
        await user.ok("recording:consent", {**mid, "consent": True})
    await h.ok("recording:start", mid)
    await h.ok("recording:stop", mid)
    await h.ok("participant:kick", {**mid, "userId": "c1"})
    await g.ok("meeting:join", mid)
    await h.ok("lobby:deny", {**mid, "userId": "c1"})
    await g.ok("meeting:join", mid)
    await h.ok("lobby:admit", {**mid, "userId": "c1"})
    await g.ok("meeting:leave", mid)
    await h.ok("meeting:end", mid)
    expected = [("t1", "join", "t1"), ("c1", "lobby_wait", None), ("t1", "admit", "c1"),
                ("t1", "mute_video", "c1"), ("t1", "consent_given", None), ("c1", "consent_given", None),
                ("t1", "recording_start"), ("t1", "recording_stop"), ("t1", "kick", "c1"),
                ("c1", "lobby_wait", None), ("t1", "deny", "c1"), ("c1", "lobby_wait", None), ("t1", "admit", "c1"),
                ("c1", "leave", None), ("t1", "end", None)]
    stored = await audit_actions(server, session.meeting_id)
    assert [entry[:len(want)] for entry, want in zip(stored, expected, strict=True)] == expected
    await g.error("meeting:audit", mid, "forbidden")
    listed = (await h.ok("meeting:audit", mid))["items"]
    assert [(e["actorId"], e["action"]) for e in listed] == [(a, b) for a, b, *_ in stored]
    assert listed[0]["at"] == "2030-03-04T10:00:00.000Z"
    admin = await server.client("a1", "admin", NS)
    assert len((await admin.ok("meeting:audit", mid))["items"]) == len(expected)


async def test_jitsi_tokens_carry_the_claims_jitsi_expects(start_server: StartServer) -> None:
    server = await start_server(jitsi_domain="meet.careline.test", jitsi_app_id="careline",
                                jitsi_secret="jitsi-secret-" + "z" * 24)
    session = await booked_meeting(server)
    session.move(START)
    h = await server.client("t1", "therapist", NS, name="Dr Therapist")
    g = await server.client("c1", "client", NS, name="Client One")
    host = (await h.ok("meeting:join", {"meetingId": session.meeting_id}))["jitsi"]
    assert (await g.ok("meeting:join", {"meetingId": session.meeting_id}))["jitsi"] is None
    await h.ok("lobby:admit", {"meetingId": session.meeting_id, "userId": "c1"})
    guest = (await g.expect("lobby:admitted"))["jitsi"]
    assert host["domain"] == guest["domain"] == "meet.careline.test"
    assert host["room"] == guest["room"] and len(host["room"]) >= 24
    for block, user, name, moderator in ((host, "t1", "Dr Therapist", True), (guest, "c1", "Client One", False)):
        claims = jwt.decode(block["jwt"], "jitsi-secret-" + "z" * 24, algorithms=["HS256"], audience="jitsi",
                            issuer="careline", options={"verify_exp": False, "verify_nbf": False})
        assert claims["sub"] == "meet.careline.test" and claims["room"] == block["room"]
        assert claims["nbf"] <= int(START.timestamp())
        assert claims["exp"] == int((END + timedelta(minutes=15)).timestamp())
        assert claims["context"]["user"] == {"id": user, "name": name, "moderator": moderator}
        assert claims["context"]["features"]["recording"] is moderator
        assert jwt.get_unverified_header(block["jwt"])["alg"] == "HS256"
    other = await server.client("t1", "therapist", "/booking")
    second = await other.ok("booking:get", {"bookingId": session.booking["id"]})
    assert second["meetingId"] == session.meeting_id


async def test_turn_credentials_are_hmac_signed_and_never_outlive_the_window(start_server: StartServer) -> None:
    secret = "turn-" + "s" * 30
    server = await start_server(ice_servers="stun:stun.example.org:3478,turn:turn.example.org:3478,"
                                            "turns:turn.example.org:5349", turn_secret=secret, turn_ttl_seconds=600)
    session = await booked_meeting(server)
    for now, expiry in ((START, START + timedelta(seconds=600)),
                        (END + timedelta(minutes=5), END + timedelta(minutes=15))):
        session.move(now)
        h = await server.client("t1", "therapist", NS)
        servers = (await h.ok("meeting:join", {"meetingId": session.meeting_id}))["iceServers"]
        assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
        turn = servers[1]
        assert turn["urls"] == ["turn:turn.example.org:3478", "turns:turn.example.org:5349"]
        assert turn["username"] == f"{int(expiry.timestamp())}:t1"
        digest = hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()
        await h.disconnect()
