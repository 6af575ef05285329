"""Job monitoring (issue 19): every background queue in /metrics, `python server.py jobs`, and the admin
requests `job:list` / `job:retry` on /notifications, driven by a real SMTP server (aiosmtpd) that refuses."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from handlers.queues import QUEUES
from rest.app_keys import JOBS, MONGO_DB
from tests.conftest import ROOT, RunningServer, StartServer
from tests.notifications.email_peer import NS, Mailbox, notify, offline, tick
from tests.uploads.test_uploads import PNG, upload

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
JOB_FIELDS = {"id", "queue", "state", "tries", "lastError", "dueAt", "createdAt", "endedAt"}


@pytest.fixture
async def app(start_server: StartServer, mailbox: tuple[Mailbox, int]) -> RunningServer:
    server = await start_server(smtp_url=f"smtp://127.0.0.1:{mailbox[1]}", email_tick_seconds=3600,
                                email_retry_base_seconds=60, email_max_tries=2)
    server.clock.source = lambda: NOW
    return server


async def scrape(server: RunningServer) -> dict[str, float]:
    """The job series of /metrics: `name{queue="..."}` -> value."""
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as reply:
        assert reply.status == 200
        text = await reply.text()
    return {match[1]: float(match[2]) for match in re.finditer(r'^(careline_job_\w+\{queue="[\w-]+"\}) (\S+)$',
                                                                 text, re.MULTILINE)}


def series(name: str, queue: str) -> str:
    return f'{name}{{queue="{queue}"}}'


async def fail_one_email(server: RunningServer, box: Mailbox) -> str:
    """A booking email the SMTP server refuses twice (EMAIL_MAX_TRIES=2): given up; returns its job id."""
    await offline(server, "ann")
    box.refuse_all = "421 4.3.0 Try again later"
    await notify(server, body="hopeless, panic attacks")
    assert await tick(server) == 0  # first try: back in the queue
    server.clock.source = lambda: NOW + timedelta(seconds=61)
    assert await tick(server) == 0  # second try: given up
    item = await server.app[MONGO_DB]["email_outbox"].find_one({"userId": "ann"})
    assert item["state"] == "failed" and item["tries"] == 2 and item["lastError"] == "SMTP 421"
    return str(item["_id"])


async def test_a_failed_email_shows_in_metrics_and_job_list_and_goes_out_after_job_retry(
        app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    job_id = await fail_one_email(app, box)
    figures = await scrape(app)
    assert figures[series("careline_job_queue_failed", "emails")] == 1
    assert figures[series("careline_job_queue_due", "emails")] == 0
    assert figures[series("careline_job_retries_total", "emails")] == 1
    assert figures[series("careline_job_failures_total", "emails")] == 1
    assert figures[series("careline_job_successes_total", "emails")] == 0

    admin = await app.client("root", "admin", NS)
    page = await admin.ok("job:list", {"queue": "emails"})
    (job,) = page["items"]
    assert page["nextCursor"] is None and set(job) == JOB_FIELDS
    assert job["id"] == job_id and job["state"] == "failed" and job["tries"] == 2 and job["lastError"] == "SMTP 421"
    assert job["endedAt"] == "2026-03-02T12:01:01.000Z"
    assert "hopeless" not in str(page) and "panic" not in str(page) and "ann@" not in str(page)

    box.refuse_all = None
    retried = await admin.ok("job:retry", {"queue": "emails", "jobId": job_id})
    assert retried["state"] == "due" and retried["tries"] == 0
    stored = await app.app[MONGO_DB]["email_outbox"].find_one({"_id": job_id})
    assert stored["state"] == "queued" and stored["tries"] == 0 and stored["dueAt"] == NOW + timedelta(seconds=61)
    await admin.error("job:retry", {"queue": "emails", "jobId": job_id}, code="precondition_failed")
    assert (await admin.ok("job:list", {"queue": "emails", "state": "due"}))["items"][0]["id"] == job_id

    assert await tick(app) == 1
    (message,) = box.messages
    assert message["To"] == "ann@example.org"
    assert await tick(app) == 0 and len(box.messages) == 1  # once
    figures = await scrape(app)
    assert figures[series("careline_job_successes_total", "emails")] == 1
    assert figures[series("careline_job_queue_failed", "emails")] == 0
    await admin.error("job:retry", {"queue": "emails", "jobId": job_id}, code="precondition_failed")  # sent


async def test_job_requests_are_for_admins_and_name_real_queues_and_jobs(app: RunningServer,
                                                                          mailbox: tuple[Mailbox, int]) -> None:
    job_id = await fail_one_email(app, mailbox[0])
    for role in ("client", "therapist"):
        someone = await app.client(f"some-{role}", role, NS)
        await someone.error("job:list", {"queue": "emails"}, code="forbidden")
        await someone.error("job:retry", {"queue": "emails", "jobId": job_id}, code="forbidden")
    admin = await app.client("root", "admin", NS)
    await admin.error("job:retry", {"queue": "emails", "jobId": "no-such-job"}, code="not_found")
    await admin.error("job:retry", {"queue": "faxes", "jobId": job_id}, code="not_found")
    await admin.error("job:list", {"queue": "faxes"}, code="not_found")
    await admin.error("job:list", {"queue": "emails", "state": "sent"}, code="invalid_payload")
    await admin.error("job:retry", {"queue": "emails"}, code="invalid_payload")
    await admin.error("job:retry", {"queue": "booking-reminders", "jobId": job_id}, code="not_found")
    stored = await app.app[MONGO_DB]["email_outbox"].find_one({"_id": job_id})
    assert stored["state"] == "failed" and stored["tries"] == 2  # nothing changed


async def test_job_list_pages_by_id(app: RunningServer, mailbox: tuple[Mailbox, int]) -> None:
    for user in ("u1", "u2", "u3"):
        await offline(app, user, f"{user}@example.org")
        await notify(app, user)
    admin = await app.client("root", "admin", NS)
    first = await admin.ok("job:list", {"queue": "emails", "state": "due", "limit": 2})
    assert len(first["items"]) == 2 and first["nextCursor"] is not None
    rest = await admin.ok("job:list", {"queue": "emails", "state": "due", "limit": 2, "cursor": first["nextCursor"]})
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    ids = [job["id"] for job in first["items"] + rest["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_metrics_show_every_queue_with_its_depth_and_oldest_due_age(app: RunningServer,
                                                                            mailbox: tuple[Mailbox, int]) -> None:
    await offline(app, "ann")
    await notify(app)  # due at NOW, not sent yet
    app.clock.source = lambda: NOW + timedelta(seconds=90)
    figures = await scrape(app)
    for queue in QUEUES:
        for name in ("careline_job_queue_due", "careline_job_queue_oldest_due_age_seconds",
                     "careline_job_successes_total", "careline_job_retries_total", "careline_job_failures_total"):
            assert series(name, queue) in figures, (name, queue)
    assert figures[series("careline_job_queue_due", "emails")] == 1
    assert figures[series("careline_job_queue_oldest_due_age_seconds", "emails")] == 90
    assert figures[series("careline_job_queue_due", "booking-reminders")] == 0
    assert series("careline_job_queue_failed", "stripe-webhooks") not in figures  # it never gives up
    await notify(app, "ann", title="Session cancelled")
    assert (await scrape(app))[series("careline_job_queue_due", "emails")] == 1  # read at most every few seconds


async def test_the_jobs_command_prints_every_queue_from_the_database(app: RunningServer,
                                                                       mailbox: tuple[Mailbox, int]) -> None:
    await fail_one_email(app, mailbox[0])
    await offline(app, "ben", "ben@example.org")
    await notify(app, "ben")
    env = {**os.environ, **{key: str(value) for key, value in {
        "MONGODB_URI": app.config.mongodb_uri, "MONGODB_DB": app.config.mongodb_db,
        "JWT_SECRET": "x" * 40, "MESSAGE_KEYS": "k1:" + "A" * 43, "LOG_LEVEL": "WARNING"}.items()}}
    process = await asyncio.create_subprocess_exec(sys.executable, "server.py", "jobs", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    lines = out.decode().splitlines()
    assert lines[0].split() == ["queue", "due", "oldest", "due", "(s)", "failed"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert set(rows) == set(QUEUES)
    assert rows["emails"][0] == "1" and rows["emails"][2] == "1"  # ben's email due, ann's failed
    assert rows["stripe-webhooks"] == ["0", "0", "-"]


async def test_another_queue_counts_its_jobs_too(server: RunningServer) -> None:
    """An upload never sent is due for the sweep UPLOAD_ORPHAN_HOURS (24) after it was made; sweeping it counts."""
    server.clock.source = lambda: NOW
    _, orphan = await upload(server, PNG, "orphan.png", server.token("alice"))
    assert orphan["id"]
    server.clock.source = lambda: NOW + timedelta(hours=25)
    figures = await scrape(server)
    assert figures[series("careline_job_queue_due", "upload-orphans")] == 1
    assert figures[series("careline_job_queue_oldest_due_age_seconds", "upload-orphans")] == 3600
    (sweep,) = [job for job in server.app[JOBS] if job.name == "uploads-orphans"]
    assert await sweep.run() == 1
    assert (await scrape(server))[series("careline_job_successes_total", "upload-orphans")] == 1


async def test_the_jobs_command_reads_the_embedded_database_without_mongodb_uri(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    env.update({"DATA_DIR": str(tmp_path / "data"), "JWT_SECRET": "x" * 40, "MESSAGE_KEYS": "k1:" + "A" * 43})
    process = await asyncio.create_subprocess_exec(sys.executable, "server.py", "jobs", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.decode().splitlines()[1:]}
    assert set(rows) == set(QUEUES) and rows["emails"] == ["0", "0", "0"]
    assert (tmp_path / "data").is_dir()  # the embedded database's files
