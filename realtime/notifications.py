"""The /notifications namespace: list and read notifications, preferences, Web Push, admin broadcast."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from realtime.base import BaseNamespace, request
from realtime.schemas import Empty
from realtime.schemas.notifications import Broadcast, ListNotifications, ReadNotifications, SetPreferences, \
    Stats, Subscribe, Unsubscribe

ADMIN = ("admin",)


class NotificationsNamespace(BaseNamespace):
    """Every socket of a user receives `notification:created` and `notification:unread`."""

    async def on_user_connected(self, sid: str, user: User) -> None:
        """Start the socket off with the current unread count."""
        count = await self.services.notifications.unread_count(user.id)
        await self.emit("notification:unread", count, to=sid)

    @request("notification:list", ListNotifications)
    async def list(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """A page of the caller's notifications."""
        return await self.services.notifications.list(user.id, **payload)

    @request("notification:read", ReadNotifications)
    async def read(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Mark some read."""
        return await self.services.notifications.read(user.id, payload["ids"])

    @request("notification:read-all", Empty)
    async def read_all(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Mark all read."""
        return await self.services.notifications.read_all(user.id)

    @request("notification:unread-count", Empty)
    async def unread(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """The unread count."""
        return await self.services.notifications.unread_count(user.id)

    @request("preferences:get", Empty)
    async def get_preferences(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """The caller's preferences."""
        return await self.services.notification_prefs.get(user.id)

    @request("preferences:set", SetPreferences, rate=(10, 1.0))
    async def set_preferences(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Change some preferences."""
        return await self.services.notification_prefs.set(user.id, **payload)

    @request("push:subscribe", Subscribe, rate=(20, 1.0))
    async def subscribe(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Store a browser PushSubscription."""
        return await self.services.push.subscribe(user.id, **payload)

    @request("push:unsubscribe", Unsubscribe, rate=(10, 0.5))
    async def unsubscribe(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Forget a PushSubscription of the caller."""
        return await self.services.push.unsubscribe(user.id, payload["endpoint"])

    @request("notification:broadcast", Broadcast, rate=(3, 0.1), roles=ADMIN)
    async def broadcast(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Admin: notify every user of a role."""
        return await self.services.notifications.broadcast(payload.pop("role"), **payload)

    @request("notification:stats", Stats, roles=ADMIN)
    async def stats(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Admin: delivery counts per category."""
        return await self.services.notifications.stats(payload["days"])
