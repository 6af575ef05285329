"""What handlers need to push events to sockets; implemented in realtime/ on top of Socket.IO."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol


class Publisher(Protocol):
    """Delivers server events to rooms; crosses processes through the Socket.IO manager."""

    async def to_room(self, namespace: str, room: str, event: str, data: Any,
                      skip_sid: str | None = None, skip_users: Collection[str] = ()) -> None:
        """Emit `event` to every socket in `room` of `namespace`, but `skip_sid` and the sockets of `skip_users`."""

    async def to_user(self, namespace: str, user_id: str, event: str, data: Any) -> None:
        """Emit `event` to every socket of one user on `namespace`."""

    async def join(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """Put a socket of `user_id` into a room (tracked in the socket registry across processes)."""

    async def leave(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """Take a socket out of a room."""


def user_room(user_id: str) -> str:
    """The room every socket of a user joins on connect."""
    return f"user:{user_id}"


def role_room(role: str) -> str:
    """The room every socket of a role joins on connect."""
    return f"role:{role}"


def room_group(namespace: str, room: str) -> str:
    """The socket-registry group of a room on a namespace (who has a live socket in it)."""
    return f"{namespace}|{room}"
