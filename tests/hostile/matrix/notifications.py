"""Matrix rows of /notifications: a notification of the owner; reading someone else's changes nothing."""
from __future__ import annotations

from typing import Any

from tests.hostile.matrix import OK, Maker, Row, World, codes, row


async def make_notification(world: World) -> None:
    created = await world.server.notifications.notifications.notify(world.user("owner"), category="system",
                                                                    title="t", body="b")
    assert created is not None
    world.ids["notification"] = created.id


async def owner_notification_unread(w: World, relation: str, answer: dict[str, Any]) -> None:
    unread = await (await w.client("owner", "/notifications")).ok("notification:unread-count")
    assert unread["unreadCount"] == (0 if relation == "owner" else 1), relation


MAKERS: dict[str, Maker] = {"notification": make_notification}
ROWS: dict[tuple[str, str], Row] = {
    ("/notifications", "notification:read"): row("notification", lambda w: {"ids": [w.ids["notification"]]},
                                                 codes(OK, OK, OK, OK, OK), owner_notification_unread),
}
