"""Client managers that deliver a broadcast with one encoding and no task per recipient."""
from __future__ import annotations

from typing import Any, Callable

import socketio
from socketio import packet as sio_packet

from realtime.transport import eio_messages


def emit_args(data: Any) -> list[Any]:
    """python-socketio's convention: a tuple is several arguments, None none, anything else one."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


class FastEmitManager(socketio.AsyncManager):
    """AsyncManager whose emit encodes the packet (and its WebSocket frame) once for every recipient
    and hands it to each socket synchronously, in the order of the emits."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Callable[..., Any] | None = None, to: Any = None, **kwargs: Any) -> None:
        """Emit to one client, a room (or rooms), or the whole namespace of this process."""
        room = to or room
        if namespace not in self.rooms:
            return
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        payload = [event, *emit_args(data)]
        send = self.server.send_eio_nowait
        shared = None if callback else eio_messages(
            self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=payload).encode())
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            parts = shared or eio_messages(self.server.packet_class(
                sio_packet.EVENT, namespace=namespace, data=payload, id=self._generate_ack_id(sid, callback)).encode())
            for part in parts:
                send(eio_sid, part)


class FastEmitRedisManager(socketio.AsyncRedisManager, FastEmitManager):
    """AsyncRedisManager whose local delivery (emits of this process and from Redis) is FastEmitManager's."""
