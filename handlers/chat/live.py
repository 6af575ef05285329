"""Ephemeral chat state: typing indicators (never persisted) and presence (lastSeenAt persisted)."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from clock import utcnow
from handlers.auth import User
from handlers.chat.access import NAMESPACE, ChatDeps
from handlers.chat.deltas import PresenceChange, Typing
from handlers.publisher import room_group, user_room
from stores.coalesce import Coalescer


@dataclass
class _Typing:
    members: tuple[str, ...]
    last_sent: float
    timer: asyncio.TimerHandle | None = None


class TypingTracker:
    """Who is typing where in this process, bounded in size.

    `typing:start` broadcasts at most once per `throttle` seconds per (conversation, user); a
    state stops on `typing:stop`, on disconnect, or `timeout` seconds after the last start.
    Events go to the other members' user rooms, so no socket of the typist ever gets one.
    """

    def __init__(self, deps: ChatDeps, throttle: float = 2.0, timeout: float = 6.0,
                 max_entries: int = 10_000) -> None:
        self.deps = deps
        self.throttle, self.timeout, self.max_entries = throttle, timeout, max_entries
        self._states: OrderedDict[tuple[str, str], _Typing] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, user: User, conversation_id: str) -> None:
        """The user is typing: announce it (throttled) and (re)arm the automatic stop."""
        conversation = await self.deps.conversation(user, conversation_id)
        key = (conversation.id, user.id)
        state = self._states.get(key)
        now = time.monotonic()
        if state is None:
            state = self._states[key] = _Typing(conversation.member_ids, now)
            await self._evict()
            await self._announce(key, state.members, True)
        elif now - state.last_sent >= self.throttle:
            state.last_sent = now
            await self._announce(key, state.members, True)
        self._states.move_to_end(key)
        if state.timer is not None:
            state.timer.cancel()
        state.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, key)

    async def stop(self, user: User, conversation_id: str) -> None:
        """The user stopped typing."""
        conversation = await self.deps.conversation(user, conversation_id)
        await self._end((conversation.id, user.id))

    async def stop_all(self, user_id: str) -> None:
        """The user's socket left: end their typing everywhere in this process."""
        for key in [key for key in self._states if key[1] == user_id]:
            await self._end(key)

    def _expire(self, key: tuple[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self._end(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, key: tuple[str, str]) -> None:
        state = self._states.pop(key, None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        await self._announce(key, state.members, False)

    async def _evict(self) -> None:
        while len(self._states) > self.max_entries:
            await self._end(next(iter(self._states)))

    async def _announce(self, key: tuple[str, str], members: tuple[str, ...], typing: bool) -> None:
        conversation_id, user_id = key
        data = Typing(conversation_id, user_id, typing)
        estranged = await self.deps.blocks.estranged(user_id)
        for member in members:
            if member != user_id and member not in estranged:
                await self.deps.publisher.to_user(NAMESPACE, member, "typing", data)


class PresenceTracker:
    """Online while any /chat socket of the user is connected on any process.

    The announcements of a connect (or disconnect) storm are made per batch (`Coalescer`): one read of
    the batch's contacts and one of their blocks, however many users came online together.
    """

    def __init__(self, deps: ChatDeps) -> None:
        self.deps = deps
        self._announcements: Coalescer[tuple[str, str], None] = Coalescer(self._announce_all)

    async def connected(self, sid: str, user: User) -> None:
        """Register the socket in its user room's group; announce `online` when it is the user's first live one.

        The count comes from this registration itself (registry operations run in order; the namespace leaves
        the user room's registration to this, `tracks_user_room`), so of two sockets of a user connecting at
        once exactly one is the first.
        """
        count = await self.deps.sockets.add(room_group(NAMESPACE, user_room(user.id)), sid, user.id)
        if count == 1:  # announced with the others of its batch; the connect does not wait for it
            self._announcements.post((user.id, "online"))

    async def disconnected(self, sid: str, user: User) -> None:
        """Unregister the socket; announce `offline` (and persist lastSeenAt) when it was the user's last /chat one.

        The count comes from the removal itself (registry operations run in order), so of two sockets of a
        user closing at once exactly one finds none left.
        """
        if await self.deps.sockets.remove(room_group(NAMESPACE, user_room(user.id)), sid, user.id):
            return
        await self.deps.users.touch(user.id)
        self._announcements.post((user.id, "offline"))

    async def _announce_all(self, changes: list[tuple[str, str]]) -> list[None]:
        """Tell each user's contacts (but the estranged) of their new status."""
        user_ids = list(dict.fromkeys(user_id for user_id, _ in changes))
        contacts = await self.deps.conversations.contacts_of(user_ids)
        estranged = await self.deps.blocks.estranged_of(user_ids)
        at = utcnow()
        for user_id, status in changes:
            data = PresenceChange(user_id, status, at)
            for contact in contacts[user_id] - estranged[user_id]:
                await self.deps.publisher.to_user(NAMESPACE, contact, "presence:changed", data)
        return [None] * len(changes)
