"""Who may do what to a meeting: strangers never learn it exists, those who see it but may not act are
`forbidden`, and a meeting relates its members for `user:lookup`."""
from __future__ import annotations

from datetime import timedelta

from rest.app_keys import MONGO_DB
from tests.booking.helpers import fix_clock
from tests.conftest import RunningServer
from tests.meetings.helpers import NS, START, booked_meeting, in_room

HOST_ONLY = ("lobby:admit", "lobby:deny", "participant:kick", "participant:mute", "meeting:end", "recording:start",
             "recording:stop")
IN_ROOM = ("meeting:join", "meeting:leave", "signal", "participant:screen", "meeting:stats", "recording:consent")


def payload_of(event: str, meeting_id: str, user_id: str) -> dict[str, object]:
    extra: dict[str, dict[str, object]] = {
        "lobby:admit": {"userId": user_id}, "lobby:deny": {"userId": user_id}, "participant:kick": {"userId": user_id},
        "participant:mute": {"userId": user_id, "kind": "audio"}, "signal": {"to": user_id, "type": "offer",
                                                                            "payload": "v=0"},
        "participant:screen": {"sharing": True}, "meeting:stats": {"stats": {"rttMs": 30}},
        "recording:consent": {"consent": True}}
    return {"meetingId": meeting_id, **extra.get(event, {})}


async def test_host_controls_are_forbidden_to_guests_and_admins_and_hidden_from_strangers(
        server: RunningServer) -> None:
    session = await booked_meeting(server)
    h, g = await in_room(server, session)
    admin = await server.client("a1", "admin", NS)
    stranger = await server.client("t2", "therapist", NS)
    for event in HOST_ONLY:
        payload = payload_of(event, session.meeting_id, "c1")
        for caller in (g, admin):
            error = await caller.error(event, payload, "forbidden")
            assert error["message"] == "Only the host may do this"
        await stranger.error(event, payload, "not_found")
    for event in IN_ROOM:  # an admin may read any meeting, never be in one
        await admin.error(event, payload_of(event, session.meeting_id, "t1"), "forbidden")
        await stranger.error(event, payload_of(event, session.meeting_id, "t1"), "not_found")
    seats = {doc["userId"]: doc["state"] async for doc in server.app[MONGO_DB]["meeting_seats"].find({})}
    assert seats == {"t1": "admitted", "c1": "admitted"}
    meeting = await h.ok("meeting:get", {"meetingId": session.meeting_id})
    assert meeting["status"] == "live"
    await h.absent("signal", within=0.2)


async def test_lookup_names_the_host_for_an_invited_client_and_nobody_for_a_stranger(server: RunningServer) -> None:
    fix_clock(server, now=START - timedelta(hours=1))
    host = await server.client("t1", "therapist", NS, name="Dr Host")
    guest = await server.client("c1", "client", NS, name="Guest One")
    stranger = await server.client("c2", "client", NS, name="Someone Else")
    await host.ok("meeting:create", {"participantIds": ["c1"], "start": "2030-03-04T10:00:00Z",
                                     "end": "2030-03-04T10:50:00Z", "requestId": "m1"})
    named = await guest.ok("user:lookup", {"ids": ["t1", "c2"]})
    assert named["items"] == [{"id": "t1", "name": "Dr Host", "role": "therapist"}]
    assert [p["id"] for p in (await host.ok("user:lookup", {"ids": ["c1", "c2"]}))["items"]] == ["c1"]
    assert (await stranger.ok("user:lookup", {"ids": ["t1", "c1"]}))["items"] == []


async def test_related_reads_only_the_meetings_of_both(server: RunningServer) -> None:
    await booked_meeting(server)
    store = server.meetings.meetings.store
    assert await store.related("c1", frozenset({"t1", "t2", "c9"})) == {"t1"}
    assert await store.related("t1", frozenset({"c1"})) == {"c1"}
    assert await store.related("c2", frozenset({"t1", "c1"})) == set()
