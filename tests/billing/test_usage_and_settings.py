"""Usage from completed sessions, and availability:settings (the therapist reads back the whole policy)."""
from __future__ import annotations

from handlers.events import BookingChanged
from rest.app_keys import MONGO_DB
from tests.billing.helpers import NS, StripePeer, billing_server
from tests.billing.test_payments import NOW, PRICE, START, priced_booking
from tests.booking.helpers import fix_clock, therapist
from tests.conftest import RunningServer, StartServer


async def test_completed_sessions_count_once_per_therapist_and_month(start_server: StartServer,
                                                                     peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _t, _client, _billing, booking = await priced_booking(server)
    record = await server.booking.bookings.store.get(booking["id"])
    assert record is not None
    for _ in range(2):   # delivered twice: counted once
        await server.shared.bus.deliver(BookingChanged("completed", record, None))
    await server.shared.bus.deliver(BookingChanged("no_show", record, None))
    usage = await server.client("t1", "therapist", NS)
    assert await usage.ok("billing:usage", {"period": "2026-03"}) == {
        "therapistId": "t1", "period": "2026-03", "minutes": 50, "sessions": 1}
    assert (await usage.ok("billing:usage", {}))["period"] == NOW.strftime("%Y-%m")  # this month by the clock
    assert (await usage.ok("billing:usage", {"period": "2026-04"}))["minutes"] == 0
    await usage.error("billing:usage", {"period": "2026-13"}, "invalid_payload")
    other = await server.client("t2", "therapist", NS)
    assert (await other.ok("billing:usage", {"period": "2026-03"}))["minutes"] == 0
    client = await server.client("c1", "client", NS)
    await client.error("billing:usage", {}, "forbidden")
    assert await server.app[MONGO_DB]["billing_usage"].count_documents({}) == 1
    assert START.strftime("%Y-%m") == "2026-03"


async def test_a_therapist_reads_back_their_whole_availability(server: RunningServer) -> None:
    fix_clock(server, now=NOW)
    first = await server.client("t1", "therapist", "/booking")
    await first.error("availability:settings", {}, "not_found")
    written = await therapist(server, policy={"price": PRICE, "requirePayment": True, "confirmWithinHours": 12})
    settings = await written.ok("availability:settings", {})
    assert settings["therapistId"] == "t1" and settings["sessionMinutes"] == 50 and settings["timezone"] == "UTC"
    assert settings["policy"]["price"] == PRICE and settings["policy"]["requirePayment"] is True
    assert settings["policy"]["confirmWithinHours"] == 12 and len(settings["weekly"]) == 7
    client = await server.client("c1", "client", "/booking")
    await client.error("availability:settings", {}, "forbidden")
    shown = await client.ok("availability:get", {"therapistId": "t1", "from": "2026-03-02T00:00:00Z",
                                                 "to": "2026-03-03T00:00:00Z"})
    assert shown["price"] == PRICE and shown["requirePayment"] is True and shown["slots"]   # before booking
    nobody = await client.ok("availability:get", {"therapistId": "t9", "from": "2026-03-02T00:00:00Z",
                                                  "to": "2026-03-03T00:00:00Z"})
    assert nobody == {"therapistId": "t9", "slots": [], "price": None, "requirePayment": False}
    other = await server.client("t2", "therapist", "/booking")
    await other.error("availability:settings", {}, "not_found")   # only one's own
