"""`booking:receipt` (issue 19): a PDF receipt of a paid session for its client and therapist, downloaded once
through a short-lived signed link; it opens with pypdf and says who, when and how much; nobody else gets it."""
from __future__ import annotations

import io
from datetime import timedelta

import aiohttp
from pypdf import PdfReader

from tests.billing.helpers import NS, StripePeer, billing_server
from tests.billing.test_payments import NOW, paid_booking, priced_booking
from tests.conftest import RunningServer, StartServer


async def fetch(server: RunningServer, url: str) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(server.url + url) as reply:
        return reply.status, await reply.read(), dict(reply.headers)


async def test_the_parties_get_a_pdf_receipt_once(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _, _, billing, booking, _ = await paid_booking(server, peer)
    link = await billing.ok("booking:receipt", {"bookingId": booking["id"]})
    assert link["url"].startswith("/api/documents/") and link["expiresAt"].endswith("Z")
    status, body, headers = await fetch(server, link["url"])
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert headers["Cache-Control"] == "private, no-store"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    for expected in ("Therapist T1", "Client C1", "100.00 USD", "5.00 USD", "105.00 USD", "Tue 03 Mar 2026, 10:00 UTC"):
        assert expected in text, (expected, text)
    assert (await fetch(server, link["url"]))[0] == 404  # once
    therapist = await server.client("t1", "therapist", NS)
    assert (await fetch(server, (await therapist.ok("booking:receipt", {"bookingId": booking["id"]}))["url"]))[0] == 200


async def test_strangers_forgers_and_late_comers_get_nothing(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _, _, billing, booking, _ = await paid_booking(server, peer)
    for stranger in (await server.client("c9", "client", NS), await server.client("t9", "therapist", NS)):
        await stranger.error("booking:receipt", {"bookingId": booking["id"]}, code="not_found")
    link = (await billing.ok("booking:receipt", {"bookingId": booking["id"]}))["url"]
    assert (await fetch(server, link.replace("u=c1", "u=c9")))[0] == 404  # bound to its user
    assert (await fetch(server, link[:-2] + ("00" if not link.endswith("00") else "11")))[0] == 404  # forged
    server.clock.source = lambda: NOW + timedelta(minutes=6)
    assert (await fetch(server, link))[0] == 404  # expired


async def test_an_unpaid_booking_has_no_receipt(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer)
    _, _, billing, booking = await priced_booking(server)
    await billing.error("booking:receipt", {"bookingId": booking["id"]}, code="precondition_failed")
