"""`assignment:export` (issue 19): a PDF of a submitted worksheet (questions, answers, feedback; score and band
for instruments) for its client and therapist, once, through a short-lived signed link; nobody else."""
from __future__ import annotations

import io

import aiohttp
from pypdf import PdfReader

from tests.conftest import RunningServer
from tests.worksheets.helpers import assigned
from tests.worksheets.test_submit import answers, instrument_pair, submit


async def pdf_text(server: RunningServer, url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(server.url + url) as reply:
        if reply.status != 200:
            return reply.status, ""
        assert reply.headers["Content-Type"] == "application/pdf"
        body = await reply.read()
    return 200, "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


async def test_a_submitted_worksheet_exports_for_both_parties_once(server: RunningServer) -> None:
    pair = await assigned(server)
    ref = {"assignmentId": pair.assignment_id}
    await pair.client.error("assignment:export", ref, code="precondition_failed")  # not submitted yet
    await pair.client.ok("draft:save", {**ref, "responses": {"story": "Slept badly, walked twice", "mood": "ok",
                                                             "tags": ["sleep", "work"], "energy": 3, "done": True}})
    await pair.client.ok("assignment:submit", ref)
    await pair.therapist.ok("assignment:feedback", {**ref, "text": "Good progress on the walks"})
    link = await pair.client.ok("assignment:export", ref)
    status, text = await pdf_text(server, link["url"])
    assert status == 200
    for expected in ("Weekly check-in", "What happened?", "Slept badly, walked twice", "Mood", "ok",
                     "sleep, work", "Energy", "3", "I tried the exercise", "yes", "Good progress on the walks",
                     "Client: C1", "Therapist: T1"):
        assert expected in text, (expected, text)
    assert (await pdf_text(server, link["url"]))[0] == 404  # once
    therapist_link = await pair.therapist.ok("assignment:export", ref)
    assert (await pdf_text(server, therapist_link["url"]))[0] == 200
    for stranger in (await server.client("c9", "client", "/worksheets"),
                     await server.client("t9", "therapist", "/worksheets")):
        await stranger.error("assignment:export", ref, code="not_found")


async def test_an_instrument_export_carries_its_score_and_band(server: RunningServer) -> None:
    therapist, client, sheet = await instrument_pair(server, "gad7")
    submitted = await submit(therapist, client, sheet, answers("gad7", 7, 12))
    link = await client.ok("assignment:export", {"assignmentId": submitted["id"]})
    status, text = await pdf_text(server, link["url"])
    assert status == 200 and "Score: 12 of 21 (moderate)" in text, text
