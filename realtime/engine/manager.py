"""Speed path: client managers that deliver a broadcast with one encoding and no task per recipient."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import socketio
from socketio import packet as sio_packet

from realtime.engine.outbox import PublishOutbox
from realtime.engine.session_output import eio_messages
from stores.redis_channel import ChannelPublisher, ChannelSubscription, lean_channel_supported

log = logging.getLogger("careline.engine")
LISTEN_RETRY_FIRST = 0.5  # seconds before the first resubscribe after Redis went away
LISTEN_RETRY_MAX = 2.0  # ... doubling up to this
#: upstream's handler of each method another process publishes (callbacks apart: see `_handle_message`)
RELAYED = {"emit": "_handle_emit", "disconnect": "_handle_disconnect", "enter_room": "_handle_enter_room",
           "leave_room": "_handle_leave_room", "close_room": "_handle_close_room"}


def emit_args(data: Any) -> list[Any]:
    """python-socketio's convention: a tuple is several arguments, None none, anything else one."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


class FastEmitManager(socketio.AsyncManager):
    """AsyncManager whose emit encodes the packet (and its WebSocket frame) once for every recipient
    and hands it to each socket synchronously, in the order of the emits.

    It also indexes the rooms of each socket: upstream finds them (on disconnect, `rooms(sid)`) by
    scanning, and on disconnect copying, every room of the namespace, so N disconnects cost O(N^2)
    (10,000 sockets with a room per user took minutes to close).

    A socket's own room (named by its sid) is not stored: its one member is the namespace's entry for
    the sid (upstream keeps a two-way dict per socket for it, ~0.5 KB per idle connection).
    """

    def __init__(self) -> None:
        """Create the manager and the socket -> rooms index."""
        super().__init__()
        self._rooms_of: dict[tuple[str, str], dict[Any, None]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        """Enter a room and index it (a socket's own room is implied by its connection)."""
        if room == sid:
            return
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), {})[room] = None

    def get_participants(self, namespace: str, room: Any) -> Any:
        """(sid, eio_sid) of every socket in `room` (or in any of a list of rooms), sid rooms included."""
        rooms = self.rooms.get(namespace, {})
        everyone = rooms.get(None)
        names = room if hasattr(room, "__len__") and not isinstance(room, str) else (room,)
        found: dict[str, str] = {}
        for name in names:
            members = rooms.get(name)
            if members is not None:
                found.update(members._fwdm)
            elif everyone is not None and name in everyone:
                found[name] = everyone[name]
        yield from found.items()

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Leave a room and drop it from the index."""
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        """The rooms a client is in (from the index), its own room first."""
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is None:
            return []
        return [sid, *(room for room in rooms if room is not None)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Upstream's disconnect bookkeeping, leaving the socket's rooms through the index."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Callable[..., Any] | None = None, to: Any = None, **kwargs: Any) -> None:
        """Emit to one client, a room (or rooms), or the whole namespace of this process.

        `skip_sid` is a sid or a list of sids and `{"room": name}` entries: every socket in such a room
        is skipped too (a JSON value, so it crosses processes in the Redis manager's message unchanged).
        """
        room = to or room
        if namespace not in self.rooms:
            return
        skip = self._skipped(namespace, skip_sid)
        payload = [event, *emit_args(data)]
        send = self.server.send_eio_nowait
        shared: list[Any] | None = None  # encoded at the first recipient on this process (often there is none)
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            if callback:
                parts = eio_messages(self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=payload,
                                                              id=self._generate_ack_id(sid, callback)).encode())
            else:
                if shared is None:
                    shared = eio_messages(
                        self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=payload).encode())
                parts = shared
            for part in parts:
                send(eio_sid, part)


    def _skipped(self, namespace: str, skip_sid: Any) -> set[Any]:
        if not isinstance(skip_sid, list):
            return {skip_sid}
        skip: set[Any] = set()
        for entry in skip_sid:
            if isinstance(entry, dict):
                if isinstance(entry.get("room"), str):
                    skip.update(sid for sid, _ in self.get_participants(namespace, entry["room"]))
            else:
                skip.add(entry)
        return skip


class FastEmitRedisManager(socketio.AsyncRedisManager, FastEmitManager):
    """AsyncRedisManager whose local delivery (emits of this process and from Redis) is FastEmitManager's."""

    def __init__(self, url: str, *, channel: str, write_only: bool = False, json: Any = None,
                 publish_timeout: float = 2.0) -> None:
        """Connect to Redis at `url` on `channel` (AsyncRedisManager's arguments; FastEmitManager's index too)."""
        socketio.AsyncRedisManager.__init__(self, url, channel=channel, write_only=write_only, json=json)
        self.publish_timeout = publish_timeout
        self._outbox = PublishOutbox(self._send_batch, publish_timeout)
        self._publisher: Any = None  # the publishing client (its own pool: the listener's is replaced on errors)
        self._lean_publisher = ChannelPublisher(url, channel) if lean_channel_supported(url) else None

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None, skip_sid: Any = None,
                   callback: Callable[..., Any] | None = None, to: Any = None, **kwargs: Any) -> None:
        """Upstream's emit (delivered here, then published in upstream's message format) without its Python walk of
        the payload for binary parts: the message is encoded first, and the JSON encoder refuses bytes, so a
        message it encodes has none. Callbacks, binary payloads and `ignore_queue` take upstream's path."""
        room, space = to or room, namespace or "/"
        if callback is not None or kwargs.get("ignore_queue"):
            return await super().emit(event, data, namespace=space, room=room, skip_sid=skip_sid,
                                      callback=callback, **kwargs)
        message = {"method": "emit", "event": event, "data": list(data) if isinstance(data, tuple) else [data],
                   "binary": False, "namespace": space, "room": room, "skip_sid": skip_sid, "callback": None,
                   "host_id": self.host_id}
        try:
            encoded = self.json.dumps(message)
        except TypeError:
            return await super().emit(event, data, namespace=space, room=room, skip_sid=skip_sid)
        await FastEmitManager.emit(self, event, data, space, room=room, skip_sid=skip_sid)
        await self._outbox.publish(encoded)

    async def _publish(self, data: Any) -> Any:
        """Publish through the outbox (realtime/engine/outbox.py): in batches, in order, two tries, bounded, so a
        Redis that stopped answering does not hold up the emit and with it the request that emitted. What is
        not published is not delivered to other processes; their clients catch up by seq."""
        await self._outbox.publish(self.json.dumps(data))

    async def _send_batch(self, messages: list[str]) -> None:
        """One pipeline of PUBLISH commands (one write, one round trip): lean (stores/redis_channel.py) where the URL
        allows, else through redis-py."""
        if self._lean_publisher is not None:
            return await self._lean_publisher.publish(messages)
        if self._publisher is None:
            self._publisher = self._get_redis_module().Redis.from_url(self.redis_url, **self.redis_options)
        pipe = self._publisher.pipeline(transaction=False)
        for message in messages:
            pipe.publish(self.channel, message)
        await pipe.execute()

    async def _thread(self) -> None:
        """Receive the other processes' messages (upstream's listener loop) through the lean subscription
        (stores/redis_channel.py; upstream's redis-py listener for other URLs), resubscribing as
        `_redis_listen_with_retries` does. This process's own messages are dropped undecoded (see there)."""
        if not lean_channel_supported(self.redis_url):
            return await super()._thread()
        subscription = ChannelSubscription(self.redis_url, self.channel)
        own = self._own_suffix()
        retry_sleep = LISTEN_RETRY_FIRST
        while True:
            try:
                async for payloads in subscription.batches():
                    retry_sleep = LISTEN_RETRY_FIRST
                    for payload in payloads:
                        if not payload.endswith(own):
                            await self._handle_message(payload)
            except Exception as exc:
                log.warning("cannot receive from redis (%s), retrying in %.1f s", type(exc).__name__, retry_sleep)
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, LISTEN_RETRY_MAX)

    async def _handle_message(self, payload: bytes) -> None:
        """One message of another process, handled as upstream's listener does."""
        try:
            message = self.json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method == "callback":  # its host_id names the process it is for
            handle = self._handle_callback
        elif message.get("host_id") == self.host_id:
            return
        elif method in RELAYED:
            handle = getattr(self, RELAYED[method])
        else:
            return
        try:
            await handle(message)
        except Exception:
            log.exception("handler error in the pub/sub listener")

    def _own_suffix(self) -> bytes:
        """How this process's own messages end: the encoded message's last key is `host_id` (upstream builds them
        so); callbacks (which name the host they go to) end otherwise."""
        return f',"host_id":"{self.host_id}"}}'.encode()

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """Upstream's redis-py listener (for URLs the lean subscription does not take) with its retries capped at
        LISTEN_RETRY_MAX seconds (upstream doubles to 60 s), so delivery between processes resumes within seconds
        of Redis answering again.

        This process's own emits and room operations come back on the channel too; upstream decodes each and
        then ignores it (its `host_id` is ours). They are dropped here undecoded (`_own_suffix`)."""
        retry_sleep = LISTEN_RETRY_FIRST
        own = self._own_suffix()
        while True:
            try:
                self._redis_connect()  # as upstream: a fresh connection and subscription on every round
                await self.pubsub.subscribe(self.channel)
                retry_sleep = LISTEN_RETRY_FIRST
                async for message in self.pubsub.listen():
                    data = message.get("data")
                    if not (isinstance(data, bytes) and data.endswith(own)):
                        yield message
            except Exception as exc:
                log.warning("cannot receive from redis (%s), retrying in %.1f s", type(exc).__name__, retry_sleep)
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, LISTEN_RETRY_MAX)
