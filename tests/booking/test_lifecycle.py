"""The booking lifecycle: create (idempotent), confirm, decline, cancel with refunds, reschedule, who may do what."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from clock import iso
from rest.app_keys import MONGO_DB
from tests.booking.helpers import (
    NS,
    at,
    availability,
    book,
    collect_events,
    fix_clock,
    pending_booking,
    slots,
    therapist,
)
from tests.conftest import RunningServer

NOW = at("2026-03-01T00:00")
START = at("2026-03-03T10:00")


async def test_create_notifies_both_parties_and_is_idempotent(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    events = collect_events(server)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    first = await client.ok("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "r1",
                                               "note": "first session"})
    assert first["status"] == "pending" and first["end"] == "2026-03-03T10:50:00.000Z"
    assert first["policy"]["refundTiers"][0] == {"minHoursBefore": 24, "percent": 100}
    assert first["paymentStatus"] == "none" and first["refund"] is None and first["note"] == "first session"
    for socket in (t, client):
        assert (await socket.expect("booking:updated"))["id"] == first["id"]
    again = await client.ok("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "r1",
                                               "note": "first session"})
    assert again["id"] == first["id"]
    await client.error("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "r1"},
                       code="conflict")  # the same requestId for another payload (no note)
    assert await server.app[MONGO_DB]["bookings"].count_documents({}) == 1
    stored = await server.app[MONGO_DB]["bookings"].find_one({})
    assert "first session" not in str(stored)   # the note is sealed at rest
    await server.shared.bus.drain()
    assert [(event.change, event.actor_id) for event in events] == [("requested", "c1")]
    assert events[0].booking.id == first["id"] and "first session" not in repr(events[0])  # the note stays sealed


async def test_only_the_parties_see_and_change_a_booking(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    await therapist(server)
    await therapist(server, "t2")
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    ref = {"bookingId": booking["id"]}
    await client.error("booking:confirm", ref, "forbidden")
    stranger = await server.client("c2", "client", NS)
    other_therapist = await server.client("t2", "therapist", NS)
    for who in (stranger, other_therapist):
        for event in ("booking:get", "booking:cancel", "booking:reschedule"):
            payload = {**ref, "start": iso(START + timedelta(hours=2))} if event == "booking:reschedule" else ref
            await who.error(event, payload, "not_found")
        assert (await who.ok("booking:list", {}))["items"] == []
    await other_therapist.error("booking:confirm", ref, "not_found")
    await stranger.error("booking:create", {"therapistId": "nobody", "start": iso(START), "requestId": "x"},
                         "not_found")
    stored = await server.app[MONGO_DB]["bookings"].find_one({})
    assert stored["status"] == "pending" and stored["start"] == START
    admin = await server.client("a1", "admin", NS)
    assert (await admin.ok("booking:get", ref))["id"] == booking["id"]


async def test_confirm_then_invalid_transitions(server: RunningServer) -> None:
    events, t, client, booking = await pending_booking(server, NOW, START)
    ref = {"bookingId": booking["id"]}
    confirmed = await t.ok("booking:confirm", ref)
    assert confirmed["status"] == "confirmed"
    reminders = await server.app[MONGO_DB]["booking_reminders"].find({}).sort("dueAt", 1).to_list()
    assert [r["dueAt"] for r in reminders] == [START - timedelta(hours=24), START - timedelta(hours=1)]
    await t.error("booking:confirm", ref, "precondition_failed")
    await t.error("booking:decline", ref, "precondition_failed")
    cancelled = await client.ok("booking:cancel", {**ref, "reason": "moving"})
    assert cancelled["status"] == "cancelled" and cancelled["cancelledBy"] == "client"
    assert await server.app[MONGO_DB]["booking_reminders"].count_documents({}) == 0
    assert await server.app[MONGO_DB]["booking_claims"].count_documents({}) == 0
    for event, who in (("booking:confirm", t), ("booking:cancel", client), ("booking:reschedule", client)):
        payload = {**ref, "start": iso(START + timedelta(hours=3))} if event == "booking:reschedule" else ref
        await who.error(event, payload, "precondition_failed")
    await server.shared.bus.drain()
    assert [event.change for event in events] == ["requested", "confirmed", "cancelled"]


async def test_a_completed_session_cannot_be_cancelled(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await server.app[MONGO_DB]["bookings"].update_one({"_id": booking["id"]}, {"$set": {"status": "completed"}})
    await client.error("booking:cancel", {"bookingId": booking["id"]}, "precondition_failed")


@pytest.mark.parametrize("before,percent", [
    (timedelta(hours=24), 100), (timedelta(hours=24) - timedelta(seconds=1), 75),
    (timedelta(hours=2), 75), (timedelta(hours=2) - timedelta(seconds=1), 50), (timedelta(seconds=1), 50),
])
async def test_client_refund_tiers_at_their_boundaries(server: RunningServer, before: timedelta,
                                                       percent: int) -> None:
    clock = fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    # Confirmed first: a booking still pending at the moved clock would be past its confirmation
    # deadline, and the scheduler could decline it while the test cancels.
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    clock[0] = START - before
    cancelled = await client.ok("booking:cancel", {"bookingId": booking["id"]})
    assert cancelled["refund"] == {"percent": percent, "amount": None}


async def test_therapist_cancel_refunds_fully_and_policy_is_snapshotted(server: RunningServer) -> None:
    clock = fix_clock(server, now=NOW)
    t = await therapist(server, policy={"refundTiers": [{"minHoursBefore": 48, "percent": 100},
                                                        {"minHoursBefore": 0, "percent": 0}]})
    client = await server.client("c1", "client", NS)
    first, second = await book(client, "t1", START), await book(client, "t1", START + timedelta(hours=2), "r2")
    await t.ok("availability:set", {"timezone": "UTC", "weekly": [], "minNoticeMinutes": 0})  # default policy now
    clock[0] = START - timedelta(hours=30)
    assert (await client.ok("booking:cancel", {"bookingId": first["id"]}))["refund"]["percent"] == 0
    cancelled = await t.ok("booking:cancel", {"bookingId": second["id"], "reason": "ill"})
    assert cancelled["refund"]["percent"] == 100 and cancelled["cancelledBy"] == "therapist"


async def test_price_and_payment_rule_are_snapshotted_into_the_booking(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    price = {"amount": 9000, "currency": "eur"}
    t = await therapist(server, policy={"price": price, "requirePayment": True})
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    assert booking["policy"]["price"] == price and booking["policy"]["requirePayment"] is True
    assert booking["paymentStatus"] == "none"
    await t.ok("availability:set", availability(policy={"price": {"amount": 12000, "currency": "eur"}}))
    assert (await client.ok("booking:get", {"bookingId": booking["id"]}))["policy"]["price"] == price
    unpriced = await t.ok("availability:set", availability())
    assert unpriced["policy"]["price"] is None and unpriced["policy"]["requirePayment"] is False
    for bad in ({"requirePayment": True}, {"price": {"amount": -1, "currency": "eur"}},
                {"price": {"amount": 100, "currency": "EURO"}}):
        error = await t.error("availability:set", availability(policy=bad))
        assert error["code"] == "invalid_payload"
    assert (await t.ok("availability:set", availability()))["policy"]["price"] is None


async def test_decline_frees_the_time(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    day = (START, START + timedelta(hours=1))
    assert await slots(client, "t1", *day) == []
    declined = await t.ok("booking:decline", {"bookingId": booking["id"], "reason": "full"})
    assert declined["status"] == "declined" and declined["reason"] == "full"
    assert await slots(client, "t1", *day) == [iso(START)]


async def test_reschedule_into_taken_time_keeps_the_old_booking(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    await therapist(server)
    one, two = await server.client("c1", "client", NS), await server.client("c2", "client", NS)
    mine, theirs = await book(one, "t1", START), await book(two, "t1", START + timedelta(hours=2))
    claims = await server.app[MONGO_DB]["booking_claims"].count_documents({})
    await one.error("booking:reschedule", {"bookingId": mine["id"], "start": iso(START + timedelta(hours=2,
                                                                                                   minutes=30))},
                    "conflict")
    assert (await one.ok("booking:get", {"bookingId": mine["id"]}))["start"] == iso(START)
    assert await server.app[MONGO_DB]["booking_claims"].count_documents({}) == claims
    three = await server.client("c3", "client", NS)
    await three.error("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "x"}, "conflict")
    stored_theirs = await two.ok("booking:get", {"bookingId": theirs["id"]})
    assert stored_theirs["status"] == "pending" and stored_theirs["start"] == theirs["start"]


async def test_reschedule_overlapping_its_own_time_and_frees_the_rest(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server)
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    moved = await client.ok("booking:reschedule", {"bookingId": booking["id"],
                                                   "start": iso(START + timedelta(minutes=30))})
    assert (moved["id"], moved["start"], moved["status"]) == (booking["id"], "2026-03-03T10:30:00.000Z", "confirmed")
    assert (await t.expect("booking:updated", lambda b: b["start"] == moved["start"]))["id"] == booking["id"]
    claims = server.app[MONGO_DB]["booking_claims"]
    assert await claims.count_documents({}) == await claims.count_documents({"settled": True}) == 12  # 10:30-11:30
    reminders = await server.app[MONGO_DB]["booking_reminders"].find({}).to_list()
    assert sorted(r["dueAt"] for r in reminders) == [START + timedelta(minutes=30) - timedelta(hours=h)
                                                     for h in (24, 1)]
    await book(await server.client("c2", "client", NS), "t1", START - timedelta(minutes=30), "r2")


async def test_reschedule_race_between_two_bookings(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    await therapist(server)
    one, two = await server.client("c1", "client", NS), await server.client("c2", "client", NS)
    first, second = await book(one, "t1", START), await book(two, "t1", START + timedelta(hours=1))
    target = iso(START + timedelta(hours=4))
    acks = await asyncio.gather(one.call("booking:reschedule", {"bookingId": first["id"], "start": target}),
                                two.call("booking:reschedule", {"bookingId": second["id"], "start": target}))
    assert sorted(ack["ok"] for ack in acks) == [False, True], acks
    loser = next(ack for ack in acks if not ack["ok"])
    assert loser["error"]["code"] == "conflict"
    stored = {doc["_id"]: doc["start"] async for doc in server.app[MONGO_DB]["bookings"].find({})}
    winner_id = next(ack["data"]["id"] for ack in acks if ack["ok"])
    loser_id = ({first["id"], second["id"]} - {winner_id}).pop()
    assert stored[winner_id] == START + timedelta(hours=4)
    assert stored[loser_id] in (START, START + timedelta(hours=1))


async def test_list_pages_through_own_bookings(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    t = await therapist(server)
    client, other = await server.client("c1", "client", NS), await server.client("c2", "client", NS)
    for i in range(5):
        await book(client, "t1", START + timedelta(hours=i), f"r{i}")
    await book(other, "t1", START + timedelta(hours=6), "o")
    page = await client.ok("booking:list", {"limit": 2})
    seen = [b["start"] for b in page["items"]]
    while page["nextCursor"]:
        page = await client.ok("booking:list", {"limit": 2, "cursor": page["nextCursor"]})
        seen += [b["start"] for b in page["items"]]
    assert seen == [iso(START + timedelta(hours=i)) for i in range(5)]
    assert len((await t.ok("booking:list", {}))["items"]) == 6
    assert (await t.ok("booking:list", {"status": "confirmed"}))["items"] == []
    window = await client.ok("booking:list", {"from": iso(START + timedelta(hours=1)),
                                              "to": iso(START + timedelta(hours=3))})
    assert len(window["items"]) == 2
    await client.error("booking:list", {"cursor": "garbage"}, "invalid_payload")


async def test_who_may_create_decline_and_how_an_admin_cancel_refunds(server: RunningServer) -> None:
    clock = fix_clock(server, now=NOW)
    t = await therapist(server)
    other = await server.client("t2", "therapist", NS)
    await other.error("booking:create", {"therapistId": "t1", "start": iso(START), "requestId": "t"},
                      code="forbidden")
    client = await server.client("c1", "client", NS)
    booking = await book(client, "t1", START)
    await client.error("booking:decline", {"bookingId": booking["id"]}, code="forbidden")
    await other.error("booking:decline", {"bookingId": booking["id"]}, code="not_found")
    assert (await client.ok("booking:get", {"bookingId": booking["id"]}))["status"] == "pending"
    await t.ok("booking:confirm", {"bookingId": booking["id"]})
    clock[0] = START - timedelta(hours=1)  # a client cancelling now would get 50 %
    admin = await server.client("root", "admin", NS)
    cancelled = await admin.ok("booking:cancel", {"bookingId": booking["id"], "reason": "platform"})
    assert cancelled["refund"]["percent"] == 100 and cancelled["cancelledBy"] == "admin"
