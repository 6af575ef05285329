"""meeting:join rules, the lobby, host controls and signaling refusals, through a real server."""
from __future__ import annotations

from datetime import timedelta

from rest.app_keys import MONGO_DB
from tests.conftest import RunningServer, StartServer
from tests.meetings.helpers import END, NS, START, audit_actions, booked_meeting, in_room, set_payment

PAID_POLICY = {"price": {"amount": 9000, "currency": "usd"}, "requirePayment": True}


async def test_confirming_a_booking_creates_its_meeting_once(server: RunningServer) -> None:
    session = await booked_meeting(server)
    meetings = server.app[MONGO_DB]["meetings"]
    assert await meetings.count_documents({"bookingId": session.booking["id"]}) == 1
    t = await server.client("t1", "therapist", NS)
    meeting = await t.ok("meeting:get", {"meetingId": session.meeting_id})
    assert meeting["bookingId"] == session.booking["id"] and meeting["hostId"] == "t1"
    assert meeting["participantIds"] == ["c1"] and meeting["status"] == "scheduled"
    assert meeting["start"] == "2030-03-04T10:00:00.000Z" and meeting["end"] == "2030-03-04T10:50:00.000Z"
    await server.meetings.meetings.follow(session.booking["id"])  # a repeated confirmation changes nothing
    assert await meetings.count_documents({"bookingId": session.booking["id"]}) == 1


async def test_window_opens_exactly_early_minutes_before_and_closes_at_end_plus_grace(server: RunningServer) -> None:
    session = await booked_meeting(server)
    t = await server.client("t1", "therapist", NS)
    session.move(START - timedelta(minutes=15, milliseconds=1))
    error = await t.error("meeting:join", {"meetingId": session.meeting_id}, "precondition_failed")
    assert error["details"]["opensAt"] == "2030-03-04T09:45:00.000Z"
    session.move(START - timedelta(minutes=15))
    assert (await t.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "admitted"
    session.move(END + timedelta(minutes=15))
    assert (await t.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "admitted"
    session.move(END + timedelta(minutes=15, milliseconds=1))
    error = await t.error("meeting:join", {"meetingId": session.meeting_id}, "precondition_failed")
    assert error["details"]["closedAt"] == "2030-03-04T11:05:00.000Z"


async def test_unpaid_booking_requires_payment_until_billing_marks_it_paid(server: RunningServer) -> None:
    session = await booked_meeting(server, policy=PAID_POLICY)
    session.move(START)
    c = await server.client("c1", "client", NS)
    await c.error("meeting:join", {"meetingId": session.meeting_id}, "payment_required")
    assert await server.app[MONGO_DB]["meeting_seats"].count_documents({}) == 0
    await set_payment(server, session.booking["id"], "paid")
    assert (await c.ok("meeting:join", {"meetingId": session.meeting_id}))["status"] == "waiting"


async def test_strangers_and_the_other_therapist_are_refused_without_seeing_the_meeting(server: RunningServer) -> None:
    session = await booked_meeting(server)
    session.move(START)
    for sub, role in (("c2", "client"), ("t2", "therapist")):
        stranger = await server.client(sub, role, NS)
        for event in ("meeting:join", "meeting:get", "meeting:leave", "recording:consent", "meeting:audit"):
            payload = {"meetingId": session.meeting_id, **({"consent": True} if event == "recording:consent" else {})}
            error = await stranger.error(event, payload, "not_found")
            assert "t1" not in error["message"] and "c1" not in error["message"]
        await stranger.error("lobby:admit", {"meetingId": session.meeting_id, "userId": "c1"}, "not_found")
        assert (await stranger.ok("meeting:list", {}))["items"] == []
    admin = await server.client("a1", "admin", NS)
    await admin.ok("meeting:get", {"meetingId": session.meeting_id})
    await admin.error("meeting:join", {"meetingId": session.meeting_id}, "forbidden")
    await admin.ok("meeting:audit", {"meetingId": session.meeting_id})
    assert await server.app[MONGO_DB]["meeting_seats"].count_documents({}) == 0


async def test_lobby_admit_then_both_see_joined_and_meeting_goes_live(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    await h.expect("participant:joined", lambda d: d["userId"] == "c1")
    await g.expect("participant:joined", lambda d: d["userId"] == "c1")
    meeting = await g.ok("meeting:get", {"meetingId": session.meeting_id})
    assert meeting["status"] == "live" and meeting["startedAt"] == "2030-03-04T10:00:00.000Z"
    seats = {doc["userId"]: doc["state"] async for doc in server.app[MONGO_DB]["meeting_seats"].find({})}
    assert seats == {"t1": "admitted", "c1": "admitted"}
    actions = await audit_actions(server, session.meeting_id)
    assert actions == [("t1", "join", "t1"), ("c1", "lobby_wait", None), ("t1", "admit", "c1")]
    await h.ok("meeting:join", {"meetingId": session.meeting_id})  # the host again: no second "starting"
    await server.shared.bus.drain()
    notes = [(doc["userId"], doc["title"], doc["body"], doc["category"])
             async for doc in server.app[MONGO_DB]["notifications"].find({"category": "meeting"}).sort("seq", 1)]
    assert notes == [("c1", "Your session is starting", "The host is in the meeting room.", "meeting"),
                     ("c1", "You were let in", "The host admitted you to the session.", "meeting")]


async def test_denied_guest_is_told_and_cannot_signal(server: RunningServer) -> None:
    session = await booked_meeting(server)
    session.move(START)
    h = await server.client("t1", "therapist", NS)
    g = await server.client("c1", "client", NS)
    await h.ok("meeting:join", {"meetingId": session.meeting_id})
    await g.ok("meeting:join", {"meetingId": session.meeting_id})
    await g.error("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "offer", "payload": "v=0"},
                  "forbidden")
    await g.error("lobby:admit", {"meetingId": session.meeting_id, "userId": "c1"}, "forbidden")
    await h.ok("lobby:deny", {"meetingId": session.meeting_id, "userId": "c1"})
    await g.expect("lobby:denied", lambda d: d == {"meetingId": session.meeting_id})
    await h.error("lobby:deny", {"meetingId": session.meeting_id, "userId": "c1"}, "not_found")
    await h.absent("signal")
    assert ("t1", "deny", "c1") in await audit_actions(server, session.meeting_id)
    await server.shared.bus.drain()
    assert await server.app[MONGO_DB]["notifications"].count_documents({"userId": "c1", "title": "Not admitted"}) == 1


async def test_signal_reaches_only_its_recipient_and_never_a_non_participant(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    other = await server.client("c2", "client", NS)
    await g.ok("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "offer", "payload": "v=0 sdp"})
    got = await h.expect("signal")
    assert got == {"meetingId": session.meeting_id, "from": "c1", "type": "offer", "payload": "v=0 sdp"}
    await h.error("signal", {"meetingId": session.meeting_id, "to": "c2", "type": "answer", "payload": "x"},
                  "not_found")
    await other.error("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "offer", "payload": "x"},
                      "not_found")
    await h.error("signal", {"meetingId": session.meeting_id, "to": "c1", "type": "hello", "payload": "x"},
                  "invalid_payload")
    await h.error("signal", {"meetingId": session.meeting_id, "to": "c1", "type": "offer",
                             "payload": "x" * (64 * 1024 + 1)}, "invalid_payload")
    whole = "v=0\r\n" + "a" * (64 * 1024 - 5)
    await h.ok("signal", {"meetingId": session.meeting_id, "to": "c1", "type": "offer", "payload": whole})
    assert (await g.expect("signal"))["payload"] == whole
    await other.absent("signal")
    await g.absent("signal", within=0.2)


async def test_signals_keep_their_order_and_a_candidate_trickle_is_not_limited(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    import asyncio

    candidates = [{"candidate": f"candidate:{i} 1 udp 1 127.0.0.1 {5000 + i} typ host", "sdpMid": "0"}
                  for i in range(60)]
    acks = await asyncio.gather(*(g.call("signal", {"meetingId": session.meeting_id, "to": "t1",
                                                    "type": "candidate", "payload": c}) for c in candidates))
    assert all(ack["ok"] for ack in acks)
    for _ in range(60):
        await h.expect("signal", timeout=5, consume=False)
        if len(h.events["signal"]) == 60:
            break
        await asyncio.sleep(0.05)
    assert [s["payload"] for s in h.events["signal"]] == candidates


async def test_kicked_user_must_pass_the_lobby_again(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    await h.ok("participant:kick", {"meetingId": session.meeting_id, "userId": "c1"})
    await g.expect("meeting:kicked", lambda d: d["meetingId"] == session.meeting_id)
    await h.expect("participant:left", lambda d: d["userId"] == "c1")
    await g.error("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "offer", "payload": "x"},
                  "forbidden")
    await h.error("signal", {"meetingId": session.meeting_id, "to": "c1", "type": "offer", "payload": "x"},
                  "not_found")
    again = await g.ok("meeting:join", {"meetingId": session.meeting_id})
    assert again["status"] == "waiting" and again["iceServers"] == [] and again["jitsi"] is None
    await h.expect("lobby:waiting", lambda d: d["userId"] == "c1")
    await h.ok("lobby:admit", {"meetingId": session.meeting_id, "userId": "c1"})
    admitted = await g.expect("lobby:admitted")
    assert admitted["meetingId"] == session.meeting_id
    assert ("t1", "kick", "c1") in await audit_actions(server, session.meeting_id)


async def test_host_mutes_and_ends_everyone_leaves(server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    await g.error("participant:mute", {"meetingId": session.meeting_id, "userId": "t1", "kind": "audio"},
                  "forbidden")
    await h.ok("participant:mute", {"meetingId": session.meeting_id, "userId": "c1", "kind": "audio"})
    muted = await g.expect("participant:muted")
    assert muted == {"meetingId": session.meeting_id, "userId": "c1", "kind": "audio"}
    await g.ok("participant:screen", {"meetingId": session.meeting_id, "sharing": True})
    assert (await h.expect("participant:screen"))["sharing"] is True
    session.move(START + timedelta(minutes=40))
    await g.error("meeting:end", {"meetingId": session.meeting_id}, "forbidden")
    ended = await h.ok("meeting:end", {"meetingId": session.meeting_id})
    assert ended["status"] == "ended" and ended["durationSeconds"] == 40 * 60
    assert ended["endedAt"] == "2030-03-04T10:40:00.000Z"
    await g.expect("meeting:ended", lambda d: d["id"] == session.meeting_id)
    await g.error("signal", {"meetingId": session.meeting_id, "to": "t1", "type": "offer", "payload": "x"},
                  "forbidden")
    await g.error("meeting:join", {"meetingId": session.meeting_id}, "precondition_failed")
    actions = [a for _, a, _ in await audit_actions(server, session.meeting_id)]
    assert actions[-2:] == ["mute_audio", "end"]


async def test_ad_hoc_meeting_create_is_idempotent_and_listed_only_for_members(server: RunningServer) -> None:
    from tests.booking.helpers import fix_clock

    fix_clock(server, now=START - timedelta(hours=1))
    t = await server.client("t1", "therapist", NS)
    c = await server.client("c1", "client", NS)
    payload = {"participantIds": ["c1", "c2"], "start": "2030-03-04T10:00:00Z", "end": "2030-03-04T11:00:00+00:00",
               "title": "Group check-in", "requestId": "m1"}
    await c.error("meeting:create", payload, "forbidden")
    first = await t.ok("meeting:create", payload)
    assert first["participantIds"] == ["c1", "c2"] and first["title"] == "Group check-in"
    assert await t.ok("meeting:create", payload) == first
    await t.error("meeting:create", {**payload, "participantIds": ["c3"]}, "conflict")
    await t.error("meeting:create", {**payload, "end": "2030-03-04T09:00:00Z", "requestId": "m2"}, "invalid_payload")
    stored = await server.app[MONGO_DB]["meetings"].find_one({"_id": first["id"]})
    assert "Group check-in" not in str(stored)
    assert [m["id"] for m in (await c.ok("meeting:list", {}))["items"]] == [first["id"]]
    outsider = await server.client("c9", "client", NS)
    assert (await outsider.ok("meeting:list", {}))["items"] == []
    await outsider.error("meeting:get", {"meetingId": first["id"]}, "not_found")


async def test_booked_client_skips_the_lobby_when_configured(start_server: StartServer) -> None:
    server = await start_server(meeting_auto_admit_booked="true")
    session = await booked_meeting(server)
    session.move(START)
    g = await server.client("c1", "client", NS)
    joined = await g.ok("meeting:join", {"meetingId": session.meeting_id})
    assert joined["status"] == "admitted" and joined["iceServers"]
    assert [(p["userId"], p["state"]) for p in joined["participants"]] == [("c1", "admitted")]


async def test_two_processes_confirming_events_create_one_meeting(start_server: StartServer) -> None:
    one = await start_server(redis=True)
    two = await start_server(redis=True)
    session = await booked_meeting(one, two)
    import asyncio

    await one.app[MONGO_DB]["meetings"].delete_many({})  # as if the confirmation's event came only now, 4 times
    made = await asyncio.gather(*(server.meetings.meetings.follow(session.booking["id"])
                                  for server in (one, two, one, two)))
    [meeting_id] = {m.id for m in made if m is not None}
    assert await one.app[MONGO_DB]["meetings"].count_documents({}) == 1
    booking = await one.app[MONGO_DB]["bookings"].find_one({"_id": session.booking["id"]})
    assert booking["meetingId"] == meeting_id != session.meeting_id
