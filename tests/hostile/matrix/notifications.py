"""Matrix rows of /notifications: a notification of the owner; reading someone else's changes nothing; only an
admin retries a failed job (the cells run on a server whose SMTP server never answers: `SERVER`)."""
from __future__ import annotations

from typing import Any

from rest.app_keys import MONGO_DB
from stores.embedded import free_port
from tests.hostile.matrix import FB, OK, Maker, Row, World, codes, row


def server_settings() -> dict[str, Any]:
    """Email through an SMTP port where nothing listens, given up after the first try."""
    return {"smtp_url": f"smtp://127.0.0.1:{free_port()}", "email_max_tries": 1}


SERVER = server_settings  # the matrix's per-table hook


async def make_notification(world: World) -> None:
    created = await world.server.notifications.notifications.notify(world.user("owner"), category="system",
                                                                    title="t", body="b")
    assert created is not None
    world.ids["notification"] = created.id


async def owner_notification_unread(w: World, relation: str, answer: dict[str, Any]) -> None:
    unread = await (await w.client("owner", "/notifications")).ok("notification:unread-count")
    assert unread["unreadCount"] == (0 if relation == "owner" else 1), relation


async def make_failed_job(world: World) -> None:
    """An email to the owner (offline on /notifications) that the SMTP server never took: a failed job."""
    owner = await world.server.client(world.user("owner"), "client", "/notifications", email="owner@example.org")
    await owner.disconnect()
    created = await world.server.notifications.notifications.notify(world.user("owner"), category="booking",
                                                                    title="Session confirmed", body="")
    channel = world.server.notifications.email
    assert created is not None and channel is not None
    await channel.tick()
    world.ids["failed_job"] = created.id


async def job_queued_again(w: World, relation: str, answer: dict[str, Any]) -> None:
    stored = await w.server.app[MONGO_DB]["email_outbox"].find_one({"_id": w.ids["failed_job"]})
    assert answer["state"] == "due" and stored["state"] == "queued" and stored["tries"] == 0, relation


MAKERS: dict[str, Maker] = {"notification": make_notification, "failed_job": make_failed_job}
ROWS: dict[tuple[str, str], Row] = {
    ("/notifications", "notification:read"): row("notification", lambda w: {"ids": [w.ids["notification"]]},
                                                 codes(OK, OK, OK, OK, OK), owner_notification_unread),
    ("/notifications", "job:retry"): row("failed_job", lambda w: {"queue": "emails", "jobId": w.ids["failed_job"]},
                                         codes(FB, FB, FB, FB, OK), job_queued_again),
}
