"""What handlers need to push events to sockets; implemented in realtime/ on top of Socket.IO."""
from __future__ import annotations

from typing import Any, Protocol


class Publisher(Protocol):
    """Delivers server events to rooms; crosses processes through the Socket.IO manager."""

    async def to_room(self, namespace: str, room: str, event: str, data: Any,
                      skip_sid: str | None = None) -> None:
        """Emit `event` to every socket in `room` of `namespace`."""

    async def to_user(self, namespace: str, user_id: str, event: str, data: Any) -> None:
        """Emit `event` to every socket of one user on `namespace`."""

    async def join(self, namespace: str, sid: str, room: str) -> None:
        """Put a socket into a room."""

    async def leave(self, namespace: str, sid: str, room: str) -> None:
        """Take a socket out of a room."""


def user_room(user_id: str) -> str:
    """The room every socket of a user joins on connect."""
    return f"user:{user_id}"


def role_room(role: str) -> str:
    """The room every socket of a role joins on connect."""
    return f"role:{role}"
