"""The email channel (issue 19) against a real SMTP server (aiosmtpd): offline users get neutral, digested
emails for the categories they want, quiet hours hold all but critical ones, refusals are retried, the
unsubscribe link switches the category off. The queue is worked by calling its job (`tick`)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from rest.app_keys import MONGO_DB
from tests.booking.helpers import availability
from tests.conftest import RunningServer, StartServer
from tests.notifications.email_peer import NS, Mailbox, notify, offline, text_of, tick

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SECRET_WORDS = ("hopeless", "sertraline", "panic attacks")


@pytest.fixture
async def app(start_server: StartServer, mailbox: tuple[Mailbox, int]) -> RunningServer:
    server = await start_server(smtp_url=f"smtp://127.0.0.1:{mailbox[1]}", email_tick_seconds=3600,
                                email_retry_base_seconds=60, public_url="https://careline.example")
    server.clock.source = lambda: NOW
    return server


async def test_an_offline_client_gets_one_email_for_a_confirmed_booking(app: RunningServer,
                                                                        mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")
    therapist = await app.client("dr", "therapist", "/booking")
    await therapist.ok("availability:set", availability())
    client = await app.client("ann", "client", "/booking", email="ann@example.org")
    booking = await client.ok("booking:create", {"therapistId": "dr", "start": "2026-03-03T10:00:00Z",
                                                 "requestId": "b1", "note": "I have panic attacks at night"})
    await client.disconnect()
    await therapist.ok("booking:confirm", {"bookingId": booking["id"]})
    await app.shared.bus.drain()
    assert await tick(app) == 1
    (message,) = box.messages
    assert message["To"] == "ann@example.org" and message["Subject"] == "Session confirmed"
    body = text_of(message)
    assert "Tue 03 Mar 2026, 10:00 UTC" in body and "http://localhost:3000" in body
    assert not any(word in body.lower() for word in SECRET_WORDS)
    assert message["List-Unsubscribe"].startswith("<https://careline.example/api/email/unsubscribe?")
    assert await tick(app) == 0  # sent once


async def test_categories_without_email_and_live_users_get_none(app: RunningServer,
                                                               mailbox: tuple[Mailbox, int]) -> None:
    await offline(app, "ann")
    await notify(app, category="message", title="New message from Bob", body="Open careline to read it.")
    live = await app.client("ann", "client", NS, email="ann@example.org")
    await notify(app)  # a booking notification while a socket is live: in-app only
    await live.disconnect()
    assert await tick(app) == 0 and mailbox[0].messages == []


async def test_five_events_make_one_digest_then_the_window_holds_the_next(app: RunningServer,
                                                                          mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")
    for hour in range(5):
        await notify(app, title="Session rescheduled", body=f"Tue 03 Mar 2026, {10 + hour}:00 UTC")
    assert await tick(app) == 1
    assert box.messages[0]["Subject"] == "5 updates about your sessions"
    assert text_of(box.messages[0]).count("Session rescheduled") >= 5
    await notify(app, title="Session cancelled")
    await notify(app, title="Session requested")
    app.clock.source = lambda: NOW + timedelta(minutes=14)
    assert await tick(app) == 0  # inside the 15-minute window
    app.clock.source = lambda: NOW + timedelta(minutes=16)
    assert await tick(app) == 1
    assert box.messages[1]["Subject"] == "2 updates about your sessions"


async def test_quiet_hours_hold_all_but_critical(app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")
    prefs = await app.client("ann", "client", NS, email="ann@example.org")
    await prefs.ok("preferences:set", {"quietHours": {"start": "11:00", "end": "13:00", "timezone": "UTC"}})
    await prefs.disconnect()
    await notify(app)
    assert await tick(app) == 0 and box.messages == []
    await notify(app, category="worksheet", title="Please contact your therapist", body="", critical=True)
    assert await tick(app) == 1 and box.messages[0]["Subject"] == "Please contact your therapist"
    app.clock.source = lambda: NOW + timedelta(hours=1, minutes=1)
    assert await tick(app) == 1 and box.messages[1]["Subject"] == "Session confirmed"


async def test_a_temporary_refusal_is_retried_and_a_permanent_one_given_up(app: RunningServer,
                                                                           mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")
    box.refusals = ["421 4.3.0 Try again later"]
    await notify(app)
    assert await tick(app) == 0
    outbox = app.app[MONGO_DB]["email_outbox"]
    item = await outbox.find_one({"userId": "ann"})
    assert item["state"] == "queued" and item["tries"] == 1 and item["lastError"] == "SMTP 421"
    app.clock.source = lambda: NOW + timedelta(seconds=61)
    assert await tick(app) == 1 and len(box.messages) == 1
    await offline(app, "ben", "ben@example.org")
    box.refusals = ["550 5.1.1 No such mailbox"]
    await notify(app, "ben")
    assert await tick(app) == 0
    failed = await outbox.find_one({"userId": "ben"})
    assert failed["state"] == "failed" and failed["lastError"] == "SMTP 550"


async def test_no_address_drops_the_email(app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    await offline(app, "cy", address=None)
    await notify(app, "cy")
    assert await tick(app) == 0 and mailbox[0].messages == []
    assert (await app.app[MONGO_DB]["email_outbox"].find_one({"userId": "cy"}))["state"] == "dropped"


async def test_the_unsubscribe_link_switches_the_category_off(app: RunningServer,
                                                              mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")
    await notify(app)
    await tick(app)
    link = box.messages[0]["List-Unsubscribe"].strip("<>").replace("https://careline.example", app.url)
    async with aiohttp.ClientSession() as http:
        async with http.post(link) as reply:  # RFC 8058 one-click
            assert reply.status == 200
        async with http.post(link.replace("c=booking", "c=billing")) as reply:  # the signature names the category
            assert reply.status == 404
    prefs = await app.client("ann", "client", NS)
    categories = (await prefs.ok("preferences:get"))["categories"]
    assert categories["booking"]["email"] is False and categories["billing"]["email"] is True
    await prefs.disconnect()
    app.clock.source = lambda: NOW + timedelta(hours=1)
    await notify(app, title="Session cancelled")
    assert await tick(app) == 0 and len(box.messages) == 1


async def test_a_new_address_is_used_once_confirmed(app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    await offline(app, "ann")  # the token says ann@example.org
    client = await app.client("ann", "client", NS, email="ann@example.org")
    pending = await client.ok("profile:set-email", {"email": "ann.new@example.net"})
    assert pending["pending"] == "ann.new@example.net" and pending["expiresAt"].endswith("Z")
    await client.error("profile:set-email", {"email": "not an address"}, code="invalid_payload")
    await client.disconnect()
    (confirmation,) = box.messages
    assert confirmation["To"] == "ann.new@example.net"
    link = next(line for line in text_of(confirmation).splitlines() if "/api/email/confirm?" in line).strip()
    await notify(app)
    await tick(app)
    assert box.messages[-1]["To"] == "ann@example.org"  # not confirmed yet: the token's address
    local = link.replace("https://careline.example", app.url)
    async with aiohttp.ClientSession() as http:
        async with http.get(local.replace("ann.new", "eve")) as reply:  # the signature names the address
            assert reply.status == 404
        async with http.get(local) as reply:
            assert reply.status == 200
    app.clock.source = lambda: NOW + timedelta(hours=1)
    await notify(app, title="Session cancelled")
    assert await tick(app) == 1 and box.messages[-1]["To"] == "ann.new@example.net"


async def test_without_smtp_a_new_address_is_unavailable(server: RunningServer) -> None:
    client = await server.client("ann", "client", NS)
    await client.error("profile:set-email", {"email": "ann@example.org"}, code="unavailable")


async def test_accents_reach_the_mailbox_intact_and_one_session_carries_many_emails(
        app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    for user in ("ann", "zoé"):
        await offline(app, user, f"{user.replace('é', 'e')}@example.org")
        await notify(app, user, title="Séance confirmée", body="mardi 3 mars, 10 h 00 — à bientôt")
        assert await tick(app) == 1
    assert [message["To"] for message in box.messages] == ["ann@example.org", "zoe@example.org"]
    assert {message["Subject"] for message in box.messages} == {"Séance confirmée"}
    assert all("mardi 3 mars, 10 h 00 — à bientôt" in text_of(message) for message in box.messages)
    assert box.sessions == 1  # the second email went over the first one's SMTP session


async def test_one_refused_email_fails_alone_and_a_cut_session_is_replaced(app: RunningServer,
                                                                          mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    for user in ("ann", "ben", "cy"):
        await offline(app, user, f"{user}@example.org")
        await notify(app, user)
    box.refusals = ["451 4.3.0 Try again later"]  # the first of the three
    assert await tick(app) == 2
    outbox = app.app[MONGO_DB]["email_outbox"]
    states = sorted([[doc["state"], doc["tries"]] async for doc in outbox.find({})])
    assert states == [["queued", 1], ["sent", 0], ["sent", 0]]
    box.restart(port)  # the server goes away and comes back: the pooled sessions are dead
    app.clock.source = lambda: NOW + timedelta(seconds=61)
    assert await tick(app) == 1
    assert sorted(message["To"] for message in box.messages) == ["ann@example.org", "ben@example.org",
                                                                 "cy@example.org"]


async def test_two_processes_working_the_queue_send_each_email_once(start_server: StartServer,
                                                                    mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    one, two = [await start_server(smtp_url=f"smtp://127.0.0.1:{port}", email_tick_seconds=3600) for _ in range(2)]
    users = [f"user{n}" for n in range(40)]
    for user in users:
        await offline(one, user, f"{user}@example.org")
        await notify(one, user)
    sent = await asyncio.gather(tick(one), tick(two), tick(one), tick(two))
    assert sum(sent) == len(users)
    assert sorted(message["To"] for message in box.messages) == sorted(f"{user}@example.org" for user in users)
    assert await tick(one) == 0 and await tick(two) == 0


async def test_a_claim_left_by_a_dead_process_is_sent_once_its_lease_runs_out(app: RunningServer,
                                                                              mailbox: tuple[Mailbox, int]) -> None:
    await offline(app, "ann")
    await notify(app)
    channel = app.notifications.email
    assert channel is not None
    claim = await channel.queue.claim(["ann"], NOW, timedelta(minutes=2))  # what a process does before it dies
    assert len(claim.items) == 1
    assert await tick(app) == 0  # leased to the dead process
    app.clock.source = lambda: NOW + timedelta(minutes=2, seconds=1)
    assert await tick(app) == 1 and len(mailbox[0].messages) == 1
