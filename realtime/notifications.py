"""The /notifications namespace (CONTRACT §6): list and read notifications, preferences, Web Push, broadcast."""
from __future__ import annotations

from typing import Any

from errors import Unavailable
from handlers.auth import User
from handlers.notifications.feature import NotificationsFeature
from realtime.base import BaseNamespace, request
from realtime.schemas.common import Empty
from realtime.schemas.jobs import JobOut, JobPageOut, ListJobs, RetryJob
from realtime.schemas.notifications import (
    Broadcast,
    CountOut,
    EmailPendingOut,
    ListNotifications,
    NotificationOut,
    NotificationPageOut,
    PreferencesOut,
    ReadNotifications,
    SetEmail,
    SetPreferences,
    Stats,
    StatsOut,
    Subscribe,
    SubscribedOut,
    UnreadCountOut,
    Unsubscribe,
)

ADMIN = ("admin",)
Payload = dict[str, Any]


class NotificationsNamespace(BaseNamespace[NotificationsFeature]):
    """Every socket of a user receives `notification:created` and `notification:unread`."""

    path = "/notifications"
    emits = {"notification:created": NotificationOut, "notification:unread": UnreadCountOut}


    async def on_user_connected(self, sid: str, user: User) -> None:
        """Start the socket off with the current unread count."""
        await self.push(sid, "notification:unread", await self.handler.notifications.unread_count(user.id))

    @request("notification:list", ListNotifications, ack=NotificationPageOut)
    async def list_notifications(self, sid: str, user: User, payload: Payload) -> Any:
        """A page of the caller's notifications."""
        return await self.handler.notifications.page(user.id, **payload)

    @request("notification:read", ReadNotifications, ack=UnreadCountOut)
    async def read(self, sid: str, user: User, payload: Payload) -> Any:
        """Mark some read."""
        return await self.handler.notifications.read(user.id, payload["ids"])

    @request("notification:read-all", Empty, ack=UnreadCountOut)
    async def read_all(self, sid: str, user: User, payload: Payload) -> Any:
        """Mark all read."""
        return await self.handler.notifications.read_all(user.id)

    @request("notification:unread-count", Empty, ack=UnreadCountOut)
    async def unread(self, sid: str, user: User, payload: Payload) -> Any:
        """The unread count."""
        return await self.handler.notifications.unread_count(user.id)

    @request("preferences:get", Empty, ack=PreferencesOut)
    async def get_preferences(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's preferences."""
        return await self.handler.preferences.get(user.id)

    @request("preferences:set", SetPreferences, ack=PreferencesOut, rate=(10, 1.0))
    async def set_preferences(self, sid: str, user: User, payload: Payload) -> Any:
        """Change some preferences."""
        return await self.handler.preferences.change(user.id, **payload)

    @request("push:subscribe", Subscribe, ack=SubscribedOut, rate=(20, 1.0), idempotency="replay")
    async def subscribe(self, sid: str, user: User, payload: Payload) -> Any:
        """Store a browser PushSubscription."""
        payload.pop("request_id")  # checked by the shared wrapper (the first ack is replayed)
        return {"subscription_id": await self.handler.push.subscribe(user.id, **payload)}

    @request("profile:set-email", SetEmail, ack=EmailPendingOut, rate=(3, 0.05))
    async def set_email(self, sid: str, user: User, payload: Payload) -> Any:
        """Send a confirmation link to a new address; emails go there once it is followed."""
        if self.handler.email is None:
            raise Unavailable("Email is not configured on this server")
        expires = await self.handler.email.ask_to_confirm(user.id, payload["email"])
        return {"pending": payload["email"], "expires_at": expires}

    @request("push:unsubscribe", Unsubscribe, rate=(10, 0.5))
    async def unsubscribe(self, sid: str, user: User, payload: Payload) -> Any:
        """Forget a PushSubscription of the caller."""
        await self.handler.push.unsubscribe(user.id, payload["endpoint"])

    @request("notification:broadcast", Broadcast, ack=CountOut, rate=(3, 0.1), roles=ADMIN, idempotency="replay")
    async def broadcast(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin: notify every user of a role."""
        payload.pop("request_id")  # checked by the shared wrapper (the first ack is replayed)
        return {"count": await self.handler.notifications.broadcast(payload.pop("role"), **payload)}

    @request("notification:stats", Stats, ack=StatsOut, roles=ADMIN)
    async def stats(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin: delivery counts per category."""
        return await self.handler.notifications.stats(payload["days"])

    @request("job:list", ListJobs, ack=JobPageOut, rate=(10, 1.0), roles=ADMIN)
    async def list_jobs(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin: a page of a background queue's jobs (failed ones by default), to find the id to retry."""
        return await self.handler.jobs.page(payload["queue"], payload["state"], payload["cursor"], payload["limit"])

    @request("job:retry", RetryJob, ack=JobOut, rate=(10, 1.0), roles=ADMIN)
    async def retry_job(self, sid: str, user: User, payload: Payload) -> Any:
        """Admin: queue a failed job again (tries reset, due now)."""
        return await self.handler.jobs.retry(payload["queue"], payload["job_id"])
