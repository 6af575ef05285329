"""Notifications: in-app delivery, preferences, Web Push and the rules that turn domain events into them."""
from __future__ import annotations

from handlers.feature import Built, Shared
from handlers.jobs import Periodic
from handlers.notifications import rules
from handlers.notifications.email import EmailChannel
from handlers.notifications.handler import NotificationHandler
from handlers.notifications.preferences import PreferenceHandler
from handlers.notifications.push import PushHandler
from handlers.queues import JobMonitor
from stores.notifications.email import EmailQueue
from stores.notifications.preferences import PreferenceStore
from stores.notifications.push import PushStore
from stores.notifications.smtp import SmtpSender
from stores.notifications.store import NotificationStore


class NotificationsFeature:
    """The handlers behind /notifications and `GET /api/push/vapid-public-key`."""

    def __init__(self, notifications: NotificationHandler, preferences: PreferenceHandler, push: PushHandler,
                 jobs: JobMonitor, email: EmailChannel | None = None) -> None:
        self.notifications = notifications
        self.preferences = preferences
        self.push = push
        self.jobs = jobs
        self.email = email


async def build(shared: Shared) -> Built[NotificationsFeature]:
    """Create the notification stores (ensuring their indexes), the handlers, and subscribe the rules."""
    config = shared.config
    store, prefs, pushes = NotificationStore(shared.db), PreferenceStore(shared.db), PushStore(shared.db)
    for each in (store, prefs, pushes):
        await each.ensure_indexes()
    push = PushHandler(pushes, store, config, concurrency=config.push_concurrency, retry_base=config.push_retry_base,
                       counters=shared.jobs.queue("web-pushes"))
    preferences = PreferenceHandler(prefs)
    notifications = NotificationHandler(store, preferences, shared, push)
    rules.subscribe(shared.bus, notifications)
    jobs = [Periodic("notifications-held-pushes", config.push_release_interval, notifications.release_held_pushes)]
    email = None
    if config.smtp_url:
        queue = EmailQueue(shared.db)
        await queue.ensure_indexes()
        email = EmailChannel(queue, SmtpSender(config.smtp_url, config.email_from), shared.users, config,
                             shared.clock, shared.jobs.queue("emails"))
        notifications.email = email
        jobs.append(Periodic("notifications-email", config.email_tick_seconds, email.tick))
    monitor = JobMonitor(shared.db, shared.jobs, shared.clock, config)
    feature = NotificationsFeature(notifications, preferences, push, monitor, email)

    async def close() -> None:
        await push.close()
        if email is not None:
            await email.sender.close()

    return Built(feature, jobs=tuple(jobs), close=close)
