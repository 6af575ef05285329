"""Web Push with VAPID: subscriptions, background sending with retries, delivery tracking."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

import aiojobs
import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from config import Config
from errors import InvalidPayload, NotFound
from handlers.jobs import QueueCounters
from stores.notifications.push import FAILED, GONE, RETRYING, SENT, PushStore, PushSubscription
from stores.notifications.store import PUSH_DONE, Notification, NotificationStore

log = logging.getLogger("careline.push")

MAX_SUBSCRIPTIONS = 10
MAX_TRIES = 5
MAX_RETRY_DELAY = 60.0
TTL_SECONDS = 24 * 3600
REQUEST_TIMEOUT = 10.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def topic(notification: Notification) -> str:
    """A Topic header (<= 32 base64url chars): replies for one conversation replace each other at the service."""
    key = notification.data.get("conversationId") if notification.category == "message" else notification.id
    return _b64url(hashlib.sha256(f"{notification.category}:{key}".encode()).digest()[:24])


def payload(notification: Notification) -> str:
    """What the service worker receives: title, neutral body, ids; never health details."""
    return json.dumps({"id": notification.id, "category": notification.category, "title": notification.title,
                       "body": notification.body})


@dataclass(frozen=True)
class Attempt:
    """The answer of the push service to one POST."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class PushHandler:
    """push:subscribe / push:unsubscribe, and sending notifications to every subscription of a user."""

    def __init__(self, store: PushStore, notifications: NotificationStore, config: Config, *,
                 concurrency: int = 20, retry_base: float = 1.0, counters: QueueCounters | None = None) -> None:
        self._store, self._notifications, self._config = store, notifications, config
        self._vapid = Vapid.from_string(private_key=config.vapid_private_key) if config.vapid_private_key else None
        self._scheduler = aiojobs.Scheduler(limit=concurrency, pending_limit=100_000)
        self._retry_base = retry_base
        self.counters = counters or QueueCounters()

    @property
    def public_key(self) -> str | None:
        """The VAPID application server key: the uncompressed P-256 point, base64url."""
        if self._vapid is None:
            return None
        point = self._vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return _b64url(point)

    async def subscribe(self, user_id: str, endpoint: str, keys: dict[str, str],
                        expiration_time: int | None = None) -> str:
        """Store the browser's subscription (https only in production); the user keeps the newest 10."""
        scheme = urlparse(endpoint).scheme
        if scheme != "https" and (self._config.production or scheme != "http"):
            raise InvalidPayload("The endpoint must be https", {"endpoint": ["Must be an https URL."]})
        subscription_id = await self._store.save(user_id, endpoint, keys["p256dh"], keys["auth"], expiration_time,
                                                 MAX_SUBSCRIPTIONS)
        return subscription_id

    async def unsubscribe(self, user_id: str, endpoint: str) -> None:
        """Forget the caller's subscription of `endpoint`."""
        if not await self._store.remove_endpoint(user_id, endpoint):
            raise NotFound("No such push subscription")

    async def dispatch(self, notification: Notification) -> None:
        """Queue the notification for every subscription of its user (bounded concurrency)."""
        await self._scheduler.spawn(self._send_all(notification))

    async def _send_all(self, notification: Notification) -> None:
        subscriptions = await self._store.for_user(notification.user_id)
        if self._vapid is not None:
            await asyncio.gather(*(self._deliver(sub, notification) for sub in subscriptions))
        await self._notifications.set_push_state(notification.id, PUSH_DONE)

    async def _deliver(self, subscription: PushSubscription, notification: Notification) -> None:
        """Up to MAX_TRIES POSTs: 429/5xx/no answer back off (Retry-After wins), 404/410 drop the subscription."""
        delivery = await self._store.start_delivery(notification.id, notification.user_id, subscription.id,
                                                    notification.category)
        for tries in range(1, MAX_TRIES + 1):
            attempt = await asyncio.to_thread(self._post, subscription, notification)
            status = attempt.status
            retryable = status is None or status == 429 or status >= 500
            if status is not None and status < 300:
                outcome = SENT
            elif status in (404, 410):
                outcome = GONE
            else:
                outcome = FAILED if not retryable or tries == MAX_TRIES else RETRYING
            if outcome == GONE:  # first: a delivery recorded as gone means its subscription is gone
                await self._store.remove(subscription.id)
            await self._store.record_attempt(delivery, status, attempt.error, outcome)
            self._count(outcome)
            if outcome != RETRYING:
                return
            delay = attempt.retry_after if attempt.retry_after is not None else self._retry_base * 2 ** (tries - 1)
            await asyncio.sleep(min(delay, MAX_RETRY_DELAY))

    def _count(self, outcome: str) -> None:
        if outcome == SENT:
            self.counters.succeeded()
        elif outcome == RETRYING:
            self.counters.retried()
        else:
            self.counters.failed()

    def _post(self, subscription: PushSubscription, notification: Notification) -> Attempt:
        """One synchronous pywebpush call (run in a thread)."""
        headers = {"Urgency": "high" if notification.critical else "normal", "Topic": topic(notification)}
        try:
            response = webpush(subscription.info(), payload(notification), vapid_private_key=self._vapid,
                               vapid_claims={"sub": self._config.vapid_subject}, ttl=TTL_SECONDS, headers=headers,
                               timeout=REQUEST_TIMEOUT)
            return Attempt(status=response.status_code)
        except WebPushException as exc:
            response = exc.response
            if response is None:
                return Attempt(status=None, error=str(exc)[:200])
            return Attempt(status=response.status_code, retry_after=_retry_after(response.headers.get("Retry-After")),
                           error=f"{response.status_code} {response.reason}"[:200])
        except (requests.RequestException, OSError) as exc:
            return Attempt(status=None, error=type(exc).__name__)

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: pushed and failed deliveries."""
        return await self._store.stats(since, until)

    async def close(self) -> None:
        """Let running sends finish briefly, then cancel the rest."""
        await self._scheduler.wait_and_close(timeout=2.0)
