"""The email channel: notifications queued durably, sent digested to the user's address, retried, given up.

`enqueue` stores one queue item per notification (by its id: at most once). The `tick` job, safe in several
processes, walks the outbox's slots (each user's items are in one of 64) in a random order, so workers
rarely meet: it lists the (user, category) groups of a slot with due items (an index range), claims the due
items of up to BATCH_GROUPS groups' users with a lease in one write, and sends one email per group through
the sender's pool of SMTP sessions: at most one email per user and category every EMAIL_DIGEST_MINUTES (a
critical item goes at once and takes the rest with it). A temporary SMTP refusal (4xx, no connection) is
retried with doubling delays, up to EMAIL_MAX_TRIES; then the items are `failed` with the reason. A user
without an address: `dropped`. Delivery is at least once: a process that dies between the SMTP server's
acceptance and the `sent` mark leaves a lease that runs out, and the email goes again. Unsubscribe links are
signed URLs (no login) that switch the category's email off.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from clock import Clock
from config import Config
from errors import NotFound, Unavailable
from handlers.jobs import QueueCounters
from handlers.notifications.email_templates import confirmation, render
from stores.crypto import Signer
from stores.notifications.email import DROPPED, FAILED, Claim, EmailItem, EmailQueue, Group, every_slot
from stores.notifications.smtp import SmtpRefused, SmtpSender
from stores.notifications.store import Notification
from stores.users import UserStore

log = logging.getLogger("careline.email")
LEASE = timedelta(minutes=2)
BATCH_GROUPS = 100  # (user, category) groups one claim takes at most
SLOTS_IN_FLIGHT = 2  # slots one worker works at once (one claims or records while the other sends)
UNSUBSCRIBE_INFO = b"careline email unsubscribe v1"
CONFIRM_INFO = b"careline email confirmation v1"
CONFIRM_HOURS = 24
SENT, HOLD, RETRY, GIVE_UP = "sent", "hold", "retry", "give_up"


@dataclass(frozen=True)
class Outcome:
    """What became of one group's email: sent, held for the digest window, to retry, or given up."""

    kind: str
    items: list[EmailItem]
    due_at: datetime | None = None
    reason: str = ""
    state: str = FAILED

    @property
    def ids(self) -> list[str]:
        """The queue items of the group."""
        return [item.id for item in self.items]


class EmailChannel:
    """Queues notifications for email and works the queue."""

    def __init__(self, queue: EmailQueue, sender: SmtpSender, users: UserStore, config: Config,
                 clock: Clock, counters: QueueCounters | None = None) -> None:
        self.queue, self.sender, self.users, self.config, self.clock = queue, sender, users, config, clock
        self.counters = counters or QueueCounters()
        self._idle = True  # the last tick sent nothing
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
        """Send what is due, slot after slot (SLOTS_IN_FLIGHT at a time); returns how many emails went out."""
        now = self.clock()
        await self.queue.release_expired(now)
        if self._idle and not await self.queue.anything_due(now):
            return 0  # one query instead of a walk of every slot (only after an idle tick: on SecantusDB it
            # reads every due item, which is nothing when idle and a waste in a backlog)
        slots = iter(every_slot())
        sent = 0

        async def walk() -> None:
            nonlocal sent
            for slot in slots:
                groups = await self.queue.due_groups(slot, self.clock())
                for at in range(0, len(groups), BATCH_GROUPS):
                    done = await self._send_batch(groups[at:at + BATCH_GROUPS])
                    sent += done  # not `sent += await ...`: that reads `sent` before the other walker adds

        await asyncio.gather(*(walk() for _ in range(SLOTS_IN_FLIGHT)))
        self._idle = sent == 0
        return sent

    async def _send_batch(self, groups: list[Group]) -> int:
        """Claim the due items of these groups' users, send one email per group, record the outcomes; how many
        emails went out."""
        now = self.clock()
        claim = await self.queue.claim(sorted({user for user, _category in groups}), now, LEASE)
        if not claim.items:
            return 0  # another worker took them first
        by_group: dict[Group, list[EmailItem]] = defaultdict(list)
        for item in claim.items:
            by_group[item.group].append(item)
        last = await self.queue.last_sent(list(by_group))
        addresses = await self.users.emails_of(sorted({user for user, _category in by_group}))
        outcomes = await asyncio.gather(*(self._deliver(group, items, last.get(group), addresses.get(group[0]), now)
                                          for group, items in by_group.items()))
        await self._record(claim, outcomes, set(last))
        return sum(outcome.kind == SENT for outcome in outcomes)

    async def _deliver(self, group: Group, items: list[EmailItem], last: datetime | None, address: str | None,
                       now: datetime) -> Outcome:
        """One group's email: held (digest window), dropped (no address), sent, or refused."""
        user_id, category = group
        if last is not None and now < last + self.digest and not any(item.critical for item in items):
            return Outcome(HOLD, items, due_at=last + self.digest)  # the digest window: combined then
        if address is None:
            return Outcome(GIVE_UP, items, reason="no address", state=DROPPED)
        mail = render(address, category, items, self.config.app_url, self.unsubscribe_url(user_id, category))
        try:
            await self.sender.send(mail)
        except SmtpRefused as refused:
            tries = max(item.tries for item in items) + 1
            if refused.temporary and tries < self.config.email_max_tries:
                delay = timedelta(seconds=self.config.email_retry_base_seconds * 2 ** (tries - 1))
                return Outcome(RETRY, items, due_at=now + delay, reason=refused.reason)
            log.warning("email given up after %d tries: %s", tries, refused.reason)
            return Outcome(GIVE_UP, items, reason=refused.reason)
        return Outcome(SENT, items)

    async def _record(self, claim: Claim, outcomes: list[Outcome], known: set[Group]) -> None:
        """Write every outcome of a batch (the sent ones in one write) and count them (`known`: the groups
        emailed before)."""
        now = self.clock()
        sent = [outcome for outcome in outcomes if outcome.kind == SENT]
        await self.queue.sent(claim, [i for outcome in sent for i in outcome.ids],
                              [outcome.items[0].group for outcome in sent], known, now)
        self.counters.succeeded(sum(len(outcome.items) for outcome in sent))
        for outcome in outcomes:
            if outcome.kind == HOLD and outcome.due_at is not None:
                await self.queue.retry_later(claim, outcome.ids, outcome.due_at)
            elif outcome.kind == RETRY and outcome.due_at is not None:
                await self.queue.retry(claim, outcome.ids, outcome.due_at, outcome.reason)
                self.counters.retried(len(outcome.items))
            elif outcome.kind == GIVE_UP:
                await self.queue.give_up(claim, outcome.ids, outcome.state, outcome.reason, now)
                self.counters.failed(len(outcome.items))

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
