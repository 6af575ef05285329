"""The email channel: notifications queued durably, sent digested to the user's address, retried, given up.

`enqueue` stores one queue item per notification (by its id: at most once). The `tick` job, safe in several
processes, claims the due items of each (user, category) with a lease and sends them as one email: at most
one email per user and category every EMAIL_DIGEST_MINUTES (a critical item goes at once and takes the rest
with it). A temporary SMTP refusal (4xx, no connection) is retried with doubling delays, up to
EMAIL_MAX_TRIES; then the items are `failed` with the reason. A user without an address: `dropped`.
Unsubscribe links are signed URLs (no login) that switch the category's email off.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from clock import Clock
from config import Config
from errors import NotFound, Unavailable
from handlers.notifications.email_templates import confirmation, render
from stores.crypto import Signer
from stores.notifications.email import DROPPED, FAILED, EmailQueue, QueueDepth
from stores.notifications.smtp import SmtpRefused, SmtpSender
from stores.notifications.store import Notification
from stores.users import UserStore

log = logging.getLogger("careline.email")
LEASE = timedelta(minutes=2)
SENDERS = 16  # emails of one tick in flight at once (each its own SMTP session)
UNSUBSCRIBE_INFO = b"careline email unsubscribe v1"
CONFIRM_INFO = b"careline email confirmation v1"
CONFIRM_HOURS = 24


class EmailChannel:
    """Queues notifications for email and works the queue."""

    def __init__(self, queue: EmailQueue, sender: SmtpSender, users: UserStore, config: Config,
                 clock: Clock) -> None:
        self.queue, self.sender, self.users, self.config, self.clock = queue, sender, users, config, clock
        self.signer = Signer(config.message_keys, UNSUBSCRIBE_INFO)
        self.confirmer = Signer(config.message_keys, CONFIRM_INFO)
        self.digest = timedelta(minutes=config.email_digest_minutes)

    async def enqueue(self, notification: Notification, not_before: datetime | None = None) -> None:
        """Queue a notification for email (held until `not_before`, the end of quiet hours, when given)."""
        now = self.clock()
        due = not_before or now
        await self.queue.enqueue(notification.id, notification.user_id, notification.category,
                                 notification.critical, notification.title, notification.body, due, now)

    async def tick(self) -> int:
        """Send what is due; returns how many emails went out."""
        now = self.clock()
        await self.queue.release_expired(now)
        limit = asyncio.Semaphore(SENDERS)

        async def one(user_id: str, category: str) -> int:
            async with limit:
                return await self._send_group(user_id, category)

        return sum(await asyncio.gather(*(one(user, category) for user, category in await self.queue.due_groups(now))))

    async def _send_group(self, user_id: str, category: str) -> int:
        now = self.clock()
        last = await self.queue.last_sent(user_id, category)
        token, items = await self.queue.claim(user_id, category, now, LEASE)
        if not items:
            return 0
        if last is not None and now < last + self.digest and not any(item.critical for item in items):
            await self.queue.retry_later(token, last + self.digest)  # the digest window: combined then
            return 0
        address = await self.users.email_of(user_id)
        if address is None:
            await self.queue.give_up(token, DROPPED, "no address", now)
            return 0
        mail = render(address, category, items, self.config.app_url, self.unsubscribe_url(user_id, category))
        try:
            await self.sender.send(mail)
        except SmtpRefused as refused:
            tries = max(item.tries for item in items) + 1
            if refused.temporary and tries < self.config.email_max_tries:
                delay = timedelta(seconds=self.config.email_retry_base_seconds * 2 ** (tries - 1))
                await self.queue.retry(token, now + delay, refused.reason)
            else:
                await self.queue.give_up(token, FAILED, refused.reason, now)
                log.warning("email given up after %d tries: %s", tries, refused.reason)
            return 0
        await self.queue.sent(token, user_id, category, self.clock())
        return 1

    # -- a new address ----------------------------------------------------------------------------

    async def ask_to_confirm(self, user_id: str, address: str) -> datetime:
        """`profile:set-email`: mail a signed confirmation link to `address` (valid CONFIRM_HOURS); the address
        is used only once it is confirmed. Returns when the link expires."""
        expires = int(self.clock().timestamp()) + CONFIRM_HOURS * 3600
        query = urlencode({"u": user_id, "e": address, "exp": expires,
                           "sig": self.confirmer.sign(f"{user_id}\n{address}\n{expires}")})
        link = f"{self.config.public_url.rstrip('/')}/api/email/confirm?{query}"
        try:
            await self.sender.send(confirmation(address, link, self.config.app_url))
        except SmtpRefused as refused:
            raise Unavailable("The confirmation email could not be sent, try again shortly",
                              {"reason": refused.reason}) from None
        return datetime.fromtimestamp(expires, tz=self.clock().tzinfo)

    async def confirm(self, user_id: str, address: str, expires: str, signature: str) -> None:
        """The confirmation link was followed: the address is the user's from now on (NotFound if not genuine)."""
        if not expires.isdigit() or int(expires) < self.clock().timestamp():
            raise NotFound("No such link")
        if not self.confirmer.valid(f"{user_id}\n{address}\n{expires}", signature):
            raise NotFound("No such link")
        if not await self.users.confirm_email(user_id, address):
            raise NotFound("No such link")

    # -- unsubscribe ------------------------------------------------------------------------------

    def unsubscribe_url(self, user_id: str, category: str) -> str:
        """A link (no login needed) that switches off email about `category` for the user."""
        query = urlencode({"u": user_id, "c": category, "sig": self.signer.sign(f"{user_id}\n{category}")})
        return f"{self.config.public_url.rstrip('/')}/api/email/unsubscribe?{query}"

    def unsubscribed(self, user_id: str, category: str, signature: str) -> None:
        """Check an unsubscribe link (NotFound when it was not made here)."""
        if not self.signer.valid(f"{user_id}\n{category}", signature):
            raise NotFound("No such link")

    async def depth(self) -> QueueDepth:
        """The queue's figures (for /metrics and `python server.py jobs`)."""
        return await self.queue.depth()
