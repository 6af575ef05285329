"""Publisher implementations: on the Socket.IO server (web) or on a write-only Redis manager (worker)."""
from __future__ import annotations

from typing import Any

import socketio

from handlers.publisher import room_group, user_room
from stores.sockets import SocketRegistry


class SocketPublisher:
    """Emits through the running AsyncServer; its manager carries emits to other processes."""

    def __init__(self, sio: socketio.AsyncServer, sockets: SocketRegistry) -> None:
        self._sio = sio
        self._sockets = sockets

    async def to_room(self, namespace: str, room: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Emit `event` to every socket in `room`."""
        await self._sio.emit(event, data, room=room, namespace=namespace, skip_sid=skip_sid)

    async def to_user(self, namespace: str, user_id: str, event: str, data: Any) -> None:
        """Emit `event` to every socket of one user."""
        await self._sio.emit(event, data, room=user_room(user_id), namespace=namespace)

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

    def __init__(self, manager: socketio.AsyncRedisManager) -> None:
        self._manager = manager

    async def to_room(self, namespace: str, room: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Emit `event` to every socket in `room`, on every web process."""
        await self._manager.emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid)

    async def to_user(self, namespace: str, user_id: str, event: str, data: Any) -> None:
        """Emit `event` to every socket of one user, on every web process."""
        await self._manager.emit(event, data, namespace=namespace, room=user_room(user_id))

    async def join(self, namespace: str, sid: str, room: str, user_id: str) -> None:
        """A worker has no sockets to move."""
        raise RuntimeError("the worker has no sockets")

    leave = join
