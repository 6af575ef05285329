"""Notifications: create (one, deduplicated, collapsed, or broadcast), deliver live and by Web Push, read."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from errors import InvalidPayload
from handlers.feature import Shared
from handlers.notifications.categories import CATEGORIES
from handlers.notifications.preferences import Delivery, PreferenceHandler, decide
from handlers.page import Page
from handlers.publisher import role_room, room_group, user_room
from stores.notifications.store import (
    PUSH_DONE,
    PUSH_HELD,
    PUSH_NONE,
    PUSH_SENDING,
    NewNotification,
    Notification,
    NotificationStore,
)

NAMESPACE = "/notifications"
log = logging.getLogger("careline.notifications")


class PushDispatch(Protocol):
    """What the handler needs from Web Push (handlers/push.py)."""

    async def dispatch(self, notification: Notification) -> None:
        """Queue: send the notification to every push subscription of its user, in the background."""

    async def stats(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per category: pushed and failed deliveries."""


class EmailQueueing(Protocol):
    """What the handler needs from the email channel (handlers/notifications/email.py)."""

    async def enqueue(self, notification: Notification, not_before: datetime | None = None) -> None:
        """Queue the notification for email, held until `not_before` when given."""


@dataclass(frozen=True)
class UnreadCount:
    """`{unreadCount}`: how many of the user's notifications are unread."""

    unread_count: int



@dataclass(frozen=True)
class CategoryStats:
    """Delivery counts of one category."""

    sent: int = 0
    delivered_in_app: int = 0
    pushed: int = 0
    failed: int = 0
    read: int = 0


@dataclass(frozen=True)
class Stats:
    """Per category over [since, until)."""

    since: datetime
    until: datetime
    categories: dict[str, CategoryStats]


def _seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidPayload("The cursor is not valid", {"cursor": ["Not a valid cursor."]})
    return int(cursor)


def _planned(content: NewNotification, plan: Delivery, live: bool, now: datetime) -> NewNotification:
    """The notification with its delivery plan: live, push state, and read already when not shown in-app."""
    push_state = (PUSH_HELD if plan.push_after else PUSH_SENDING) if plan.push else PUSH_NONE
    return replace(content, live=live and plan.in_app, push_state=push_state,
                   read_at=None if plan.in_app else now)


class NotificationHandler:
    """Creates and delivers notifications (what the rules call) and answers the /notifications requests."""

    def __init__(self, store: NotificationStore, prefs: PreferenceHandler, shared: Shared,
                 push: PushDispatch | None = None) -> None:
        self._store, self._prefs, self._publisher = store, prefs, shared.publisher
        self._sockets, self._users, self.push = shared.sockets, shared.users, push
        self.email: EmailQueueing | None = None  # set by the feature when SMTP_URL is configured
        self.clock = shared.clock  # the time quiet hours are judged by

    async def notify(self, user_id: str, *, category: str, title: str, body: str,
                     data: dict[str, Any] | None = None, critical: bool = False,
                     dedupe_key: str | None = None, collapse_key: str | None = None) -> Notification | None:
        """Create and deliver one notification; None when `dedupe_key`/`collapse_key` already exists."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown notification category {category!r}")
        group = room_group(NAMESPACE, user_room(user_id))
        content = NewNotification(category, title, body, data or {}, critical, dedupe_key=dedupe_key,
                                  collapse_key=collapse_key)
        async with self._store.seq_lease() as lease:  # catch-ups stop before the seq until the block ends
            prefs, live, seq = await asyncio.gather(self._prefs.get(user_id), self._sockets.any_live([group]),
                                                    lease.seq())
            now = self.clock()
            plan = decide(prefs, category, critical, live[group], now)
            notification = await self._store.create(user_id, seq, _planned(content, plan, live[group], now))
            if notification is not None and plan.in_app:
                await self._publisher.to_user(NAMESPACE, user_id, "notification:created", notification)
        if notification is None:
            return None
        if plan.in_app:
            await self._emit_unread(user_id, await self._store.unread_count(user_id))
        if plan.push_after:
            await self._store.hold_push(notification.id, plan.push_after)
        elif plan.push:
            await self._dispatch(notification)
        if plan.email and self.email is not None:
            await self.email.enqueue(notification, plan.email_after)
        return notification

    async def _dispatch(self, notification: Notification) -> None:
        if self.push is not None:
            await self.push.dispatch(notification)

    async def _emit_unread(self, user_id: str, count: int) -> int:
        await self._publisher.to_user(NAMESPACE, user_id, "notification:unread", UnreadCount(count))
        return count

    async def page(self, user_id: str, *, limit: int, cursor: str | None = None, unread_only: bool = False,
                   after_seq: int | None = None) -> Page[Notification]:
        """A page: newest first, or (with afterSeq) everything after that seq, oldest first."""
        position = _seq_cursor(cursor)
        if after_seq is not None:
            return await self._catch_up(user_id, max(after_seq, position or 0), limit, unread_only)
        items = await self._store.page(user_id, limit=limit, before_seq=position, unread_only=unread_only)
        next_cursor = str(items[-1].seq) if len(items) == limit else None
        return Page(items, next_cursor)

    async def _catch_up(self, user_id: str, after_seq: int, limit: int, unread_only: bool) -> Page[Notification]:
        """Oldest first after `after_seq`, stopping before any seq still being written (it may be this
        user's); then `nextCursor` is set even on a short page: ask again."""
        settled = await self._store.settled(after_seq)
        items = await self._store.page(user_id, limit=limit, after_seq=after_seq, up_to_seq=settled.seq,
                                       unread_only=unread_only)
        last = items[-1].seq if items else after_seq
        next_cursor = str(last) if len(items) == limit or settled.held else None
        return Page(items, next_cursor)

    async def read(self, user_id: str, ids: list[str]) -> UnreadCount:
        """Mark some of the user's notifications read (others' ids change nothing)."""
        changed = await self._store.mark_read(user_id, refs=ids)
        return UnreadCount(await self._unread_after(user_id, changed))

    async def read_all(self, user_id: str) -> UnreadCount:
        """Mark all of the user's notifications read."""
        changed = await self._store.mark_read(user_id)
        return UnreadCount(await self._unread_after(user_id, changed))

    async def read_collapsed(self, user_id: str, collapse_key: str, up_to_seq: int | None = None) -> None:
        """Mark the pending collapsed notification read (e.g. the conversation was read)."""
        if await self._store.mark_collapsed_read(user_id, collapse_key, up_to_seq):
            await self._emit_unread(user_id, await self._store.unread_count(user_id))

    async def read_collapsed_many(self, reads: dict[tuple[str, str], int | None]) -> None:
        """`read_collapsed` for many (user, collapse key) pairs: one lookup, writes only where pending."""
        pending = await self._store.unread_collapsed({user for user, _ in reads}, {key for _, key in reads})
        for user_id, collapse_key in pending & reads.keys():
            await self.read_collapsed(user_id, collapse_key, reads[(user_id, collapse_key)])

    async def _unread_after(self, user_id: str, changed: int) -> int:
        if changed:
            return await self._emit_unread(user_id, await self._store.unread_count(user_id))
        return await self._store.unread_count(user_id)

    async def unread_count(self, user_id: str) -> UnreadCount:
        """How many unread notifications the user has."""
        return UnreadCount(await self._store.unread_count(user_id))

    async def broadcast(self, role: str, *, title: str, body: str, category: str = "system") -> int:
        """Persist for every known user of `role`, then emit once to the role room (no Web Push)."""
        user_ids = await self._users.ids_with_role(role)
        groups = [room_group(NAMESPACE, user_room(uid)) for uid in user_ids]
        live = await self._sockets.any_live(groups) if user_ids else {}
        content = NewNotification(category, title, body, {})
        shared = await self._store.create_broadcast(user_ids, content, sum(map(bool, live.values())))
        await self._publisher.to_room(NAMESPACE, role_room(role), "notification:created", shared)
        return len(user_ids)

    async def release_held_pushes(self) -> None:
        """Periodic: send the pushes held for quiet hours that have ended, unless read meanwhile."""
        while (notification := await self._store.claim_due_push(self.clock())) is not None:
            if notification.read_at is not None and not notification.silent:
                await self._store.set_push_state(notification.id, PUSH_DONE)
            else:
                await self._dispatch(notification)

    async def stats(self, days: int) -> Stats:
        """Per category over the last `days`: sent, deliveredInApp, pushed, failed, read."""
        until = self.clock()
        since = until - timedelta(days=days)
        counts = await self._store.stats(since, until)
        pushed = await self.push.stats(since, until) if self.push else {}
        categories = {name: _category_stats({**counts.get(name, {}), **pushed.get(name, {})}) for name in CATEGORIES}
        return Stats(since, until, categories)


def _category_stats(counts: dict[str, int]) -> CategoryStats:
    return CategoryStats(sent=counts.get("sent", 0), delivered_in_app=counts.get("deliveredInApp", 0),
                         pushed=counts.get("pushed", 0), failed=counts.get("failed", 0), read=counts.get("read", 0))
