"""Publisher implementations: on the Socket.IO server (web) or on a write-only Redis manager (worker).

Handlers publish records; the wire format turns each into its event's wire object once per emit.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

import socketio

from handlers.publisher import room_group, user_room
from realtime.wire import WireFormat
from stores.sockets import SocketRegistry


def skipping(skip_sid: str | None, skip_users: Collection[str]) -> Any:
    """The manager's `skip_sid`: a sid, or a list with `{"room": user room}` entries (realtime/engine/manager.py)."""
    if not skip_users:
        return skip_sid
    return ([skip_sid] if skip_sid else []) + [{"room": user_room(user_id)} for user_id in sorted(skip_users)]


class SocketPublisher:
    """Emits through the running AsyncServer; its manager carries emits to other processes."""

    def __init__(self, sio: socketio.AsyncServer, sockets: SocketRegistry, wire: WireFormat) -> None:
        self._sio = sio
        self._sockets = sockets
        self._wire = wire

    async def to_room(self, namespace: str, room: str, event: str, payload: Any, skip_sid: str | None = None,
                      skip_users: Collection[str] = ()) -> None:
        """Emit `event` to every socket in `room`, but `skip_sid` and the sockets of `skip_users`."""
        data = self._wire.dump(namespace, event, payload)
        await self._sio.emit(event, data, room=room, namespace=namespace, skip_sid=skipping(skip_sid, skip_users))

    async def to_user(self, namespace: str, user_id: str, event: str, payload: Any) -> None:
        """Emit `event` to every socket of one user."""
        await self.to_room(namespace, user_room(user_id), event, payload)

    async def join(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """Put a (local) socket into a room and register it there for every process to see."""
        await self._sio.enter_room(sid, room, namespace=namespace)
        await self._sockets.add(room_group(namespace, room), sid, user_id)

    async def leave(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """Take a (local) socket out of a room."""
        await self._sio.leave_room(sid, room, namespace=namespace)
        await self._sockets.remove(room_group(namespace, room), sid, user_id)


class ManagerPublisher:
    """Emits from a process without sockets (the worker) through a write-only Redis manager."""

    def __init__(self, manager: socketio.AsyncRedisManager, wire: WireFormat) -> None:
        self._manager = manager
        self._wire = wire

    async def to_room(self, namespace: str, room: str, event: str, payload: Any, skip_sid: str | None = None,
                      skip_users: Collection[str] = ()) -> None:
        """Emit `event` to every socket in `room` on every web process, but `skip_sid` and `skip_users`' sockets."""
        data = self._wire.dump(namespace, event, payload)
        await self._manager.emit(event, data, namespace=namespace, room=room,
                                 skip_sid=skipping(skip_sid, skip_users))

    async def to_user(self, namespace: str, user_id: str, event: str, payload: Any) -> None:
        """Emit `event` to every socket of one user, on every web process."""
        await self.to_room(namespace, user_room(user_id), event, payload)

    async def join(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """A worker has no sockets to move."""
        raise RuntimeError("the worker has no sockets")

    async def leave(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """A worker has no sockets to move."""
        raise RuntimeError("the worker has no sockets")
