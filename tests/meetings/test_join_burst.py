"""The grouped join path: a burst of admissions in one bulk write, and a guest's lobby seat created while the
meeting is read (membership known from another process) — each still answering exactly as one at a time would."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from rest.app_keys import MONGO_DB
from stores.group_commit import GroupMarkedUpdate
from tests.booking.helpers import fix_clock
from tests.conftest import RunningServer, StartServer
from tests.meetings.helpers import NS, START, audit_actions

GUESTS = ["c1", "c2", "c3", "c4", "c5"]


async def _ad_hoc(server: RunningServer, *others: RunningServer) -> tuple[str, list[datetime]]:
    clock = fix_clock(server, *others, now=START)
    t = await server.client("t1", "therapist", NS)
    meeting = await t.ok("meeting:create", {"participantIds": GUESTS, "start": "2030-03-04T10:00:00Z",
                                            "end": "2030-03-04T11:00:00Z", "requestId": "burst"})
    await t.disconnect()
    return meeting["id"], clock


async def test_admissions_at_once_each_hear_whether_their_guest_was_waiting(server: RunningServer) -> None:
    meeting_id, _clock = await _ad_hoc(server)
    h = await server.client("t1", "therapist", NS)
    await h.ok("meeting:join", {"meetingId": meeting_id})
    guests = {uid: await server.client(uid, "client", NS) for uid in GUESTS}
    for uid in GUESTS[:4]:  # c5 is invited but never knocks
        assert (await guests[uid].ok("meeting:join", {"meetingId": meeting_id}))["status"] == "waiting"
    admits = [*GUESTS, "c1"]  # c1 twice: only one of the two may admit
    acks = await asyncio.gather(*(h.call("lobby:admit", {"meetingId": meeting_id, "userId": uid}) for uid in admits))
    results = [(uid, ack["ok"] or ack["error"]["code"]) for uid, ack in zip(admits, acks, strict=True)]
    assert sorted(results, key=str) == sorted([("c1", True), ("c1", "not_found"), ("c2", True), ("c3", True),
                                               ("c4", True), ("c5", "not_found")], key=str)
    for uid in GUESTS[:4]:
        await guests[uid].expect("lobby:admitted", lambda d: d["meetingId"] == meeting_id)
    await guests["c5"].absent("lobby:admitted")
    seats = {doc["userId"]: doc["state"] async for doc in server.app[MONGO_DB]["meeting_seats"].find({})}
    assert seats == {"t1": "admitted", "c1": "admitted", "c2": "admitted", "c3": "admitted", "c4": "admitted"}
    admitted = sorted(target for _actor, action, target in await audit_actions(server, meeting_id)
                      if action == "admit")
    assert admitted == ["c1", "c2", "c3", "c4"]


async def test_a_guest_knocks_on_a_process_that_never_read_the_meeting(start_server: StartServer) -> None:
    one = await start_server(redis=True)
    two = await start_server(redis=True)
    meeting_id, clock = await _ad_hoc(one, two)  # created on one: two knows its members from Redis only
    h = await one.client("t1", "therapist", NS)
    await h.ok("meeting:join", {"meetingId": meeting_id})
    clock[0] = START + timedelta(hours=1, minutes=15, milliseconds=1)  # past end + grace: two must read the time
    c1 = await two.client("c1", "client", NS)
    error = await c1.error("meeting:join", {"meetingId": meeting_id}, "precondition_failed")
    assert error["details"]["closedAt"] == "2030-03-04T11:15:00.000Z"
    stranger = await two.client("c9", "client", NS)
    await stranger.error("meeting:join", {"meetingId": meeting_id}, "not_found")
    assert await one.app[MONGO_DB]["meeting_seats"].count_documents({"userId": {"$ne": "t1"}}) == 0
    await h.absent("lobby:waiting")
    clock[0] = START
    assert (await c1.ok("meeting:join", {"meetingId": meeting_id}))["status"] == "waiting"
    await h.expect("lobby:waiting", lambda d: d["userId"] == "c1")
    await h.ok("meeting:end", {"meetingId": meeting_id})
    c2 = await two.client("c2", "client", NS)
    await c2.error("meeting:join", {"meetingId": meeting_id}, "precondition_failed")  # ended: read, not remembered
    assert await one.app[MONGO_DB]["meeting_seats"].count_documents({"userId": "c2"}) == 0
    assert ("c1", "lobby_wait", None) in await audit_actions(one, meeting_id)


async def test_marked_updates_of_one_batch_say_which_matched_and_never_create(server: RunningServer) -> None:
    collection = server.app[MONGO_DB]["marked_updates"]
    await collection.insert_many([{"_id": "a", "state": "waiting"}, {"_id": "b", "state": "waiting"},
                                  {"_id": "c", "state": "denied"}])
    updates = GroupMarkedUpdate(collection, "mark")
    move = {"$set": {"state": "admitted"}}
    matched = await asyncio.gather(*(updates.set_if({"_id": key, "state": "waiting"}, move)
                                     for key in ("a", "b", "c", "missing", "a")))
    assert matched[1:4] == [True, False, False] and sorted([matched[0], matched[4]]) == [False, True]  # "a" once
    assert {doc["_id"]: doc["state"] async for doc in collection.find({})} == \
        {"a": "admitted", "b": "admitted", "c": "denied"}
    assert await updates.set_if({"_id": "c", "state": "denied"}, move)  # alone: the count says it
