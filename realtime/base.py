"""The shared base of every namespace: auth at connect, the ack envelope, validation, rate limits.

A feature namespace declares its requests with `@request(event, Schema, ack=OutputSchema)`; each method
receives `(sid, user, payload)` with the payload already validated and returns a record (or a page of
records) that the ack schema turns into the wire object. `emits` names the schema of every server event
the namespace pushes (realtime/wire.py dumps handlers' records with them).
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

import orjson
import socketio
from marshmallow import Schema, ValidationError

from errors import (
    AppError,
    Forbidden,
    Internal,
    InvalidPayload,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from handlers.auth import Identity, User
from handlers.feature import Shared
from handlers.metrics import Metrics
from handlers.publisher import role_room, room_group, user_room
from realtime.schemas.common import RefreshSession, SessionExpired, SessionRefreshed
from stores.errors import failed_dependency, is_dependency_failure

log = logging.getLogger("careline.realtime")

Method = Callable[[Any, str, User, dict[str, Any]], Awaitable[Any]]
H = TypeVar("H")
Rate = tuple[int, float]


@dataclass(frozen=True)
class RequestSpec:
    """How one client event is validated, limited, authorised and answered."""

    event: str
    schema: type[Schema] | None
    ack: type[Schema] | None
    rate: Rate | None
    roles: tuple[str, ...] | None
    method: str = ""
    summary: str = ""
    extra_bytes: int = 0  # allowed on top of MAX_PAYLOAD_BYTES (a signal's 64 KiB SDP plus its envelope)

    @functools.cached_property
    def loader(self) -> Schema | None:
        """One schema instance, reused: loading keeps no state, and building one deep-copies its fields."""
        return self.schema() if self.schema is not None else None

    @functools.cached_property
    def dumper(self) -> Schema | None:
        """The ack's output schema instance (None: the ack data is `{}`)."""
        return self.ack() if self.ack is not None else None

    def answer(self, result: Any) -> Any:
        """The ack data of a method's result."""
        if self.dumper is None:
            return {}
        return None if result is None else self.dumper.dump(result)


def request(event: str, schema: type[Schema] | None = None, *, ack: type[Schema] | None = None,
            rate: Rate | None = None, roles: tuple[str, ...] | None = None,
            extra_bytes: int = 0) -> Callable[[Method], Method]:
    """Declare a namespace method as the handler of client event `event` (ack=None answers `{}`)."""
    def mark(method: Method) -> Method:
        summary = (method.__doc__ or "").strip().splitlines()[0] if method.__doc__ else ""
        vars(method)["_careline_request"] = RequestSpec(event, schema, ack, rate, roles, summary=summary,
                                                        extra_bytes=extra_bytes)
        return method
    return mark


def ok(data: Any) -> dict[str, Any]:
    """The success envelope."""
    return {"ok": True, "data": {} if data is None else data}


def fail(error: AppError) -> dict[str, Any]:
    """The failure envelope."""
    return {"ok": False, "error": error.to_dict()}


def bearer_token(environ: dict[str, Any], auth: Any) -> Any:
    """The token from the connect payload, else from an `Authorization: Bearer` header (never the query)."""
    if isinstance(auth, dict) and auth.get("token") is not None:
        return auth["token"]
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _collect_requests(cls: type) -> dict[str, RequestSpec]:
    """Every `@request` method of `cls` and its bases (subclasses override by event name)."""
    found: dict[str, RequestSpec] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            spec = getattr(member, "_careline_request", None)
            if isinstance(spec, RequestSpec):
                found[spec.event] = dataclasses.replace(spec, method=name)
    return found


def _collect_emits(cls: type) -> dict[str, type[Schema]]:
    """The server events of `cls` and its bases."""
    found: dict[str, type[Schema]] = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass).get("emits", {}))
    return found


class BaseNamespace(socketio.AsyncNamespace, Generic[H]):
    """Every careline namespace: authenticated sockets, one envelope, validated and rate-limited requests.

    `handler` is the feature's handler (built by `handlers/<feature>/feature.py`), the one thing a
    namespace's request methods call.
    """

    path: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requests: ClassVar[dict[str, RequestSpec]] = {}
    emits: ClassVar[dict[str, type[Schema]]] = {"session:expired": SessionExpired}
    all_emits: ClassVar[dict[str, type[Schema]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.requests = _collect_requests(cls)
        cls.all_emits = _collect_emits(cls)

    def __init__(self, handler: H, shared: Shared, metrics: Metrics) -> None:
        super().__init__(self.path)
        self.handler = handler
        self.shared = shared
        self.metrics = metrics
        self._event_dumpers = {event: schema() for event, schema in self.all_emits.items()}

    async def push(self, sid: str, event: str, payload: Any) -> None:
        """Emit one of this namespace's server events to one socket, in its declared wire shape."""
        await self.emit(event, self._event_dumpers[event].dump(payload), to=sid)

    # -- connection lifecycle -------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Authenticate the socket or refuse it with `{code, message}`."""
        try:
            identity = self.shared.auth.verify(bearer_token(environ, auth))
        except AppError as error:
            self.metrics.connect_refused.labels(self.namespace, error.code).inc()
            log.info("connect refused", extra={"namespace": self.namespace, "code": error.code})
            raise socketio.exceptions.ConnectionRefusedError(error.message, error.to_dict()) from None
        user = identity.user
        await self.save_session(sid, {"user": user, "exp": identity.expires_at,
                                      "timer": self._arm_expiry(sid, identity.expires_at)})
        await self.enter_room(sid, role_room(user.role))
        # In the room even when the registry (Redis) is down: delivery works, presence may lag.
        await self._safely(self.shared.publisher.join(self.namespace, sid, user_room(user.id), user.id))
        self.metrics.connected.labels(self.namespace).inc()
        log.info("connect", extra={"namespace": self.namespace, "user": user.id, "sid": sid})
        await self._safely(self.shared.users.upsert_seen(user.id, user.role, user.name))
        await self._safely(self.on_user_connected(sid, user))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """Forget the socket's timers and tell the feature."""
        session = await self.get_session(sid)
        user: User | None = session.get("user")
        if user is None:
            return
        timer = session.get("timer")
        if timer is not None:
            timer.cancel()
        self.metrics.connected.labels(self.namespace).dec()
        await self._safely(self._forget_rooms(sid, user))
        log.info("disconnect", extra={"namespace": self.namespace, "user": user.id, "sid": sid,
                                      "reason": str(reason)})
        await self._safely(self.on_user_disconnected(sid, user))

    async def _forget_rooms(self, sid: str, user: User) -> None:
        """Unregister the socket from every tracked room (user and feature rooms) it was in."""
        for room in self.rooms(sid):
            if room != sid and not room.startswith("role:"):
                await self.shared.sockets.remove(room_group(self.namespace, room), sid, user.id)

    async def on_user_connected(self, sid: str, user: User) -> None:
        """Feature hook: an authenticated socket joined this namespace."""

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """Feature hook: an authenticated socket left this namespace."""

    def _arm_expiry(self, sid: str, expires_at: float) -> asyncio.TimerHandle:
        delay = max(0.0, expires_at - time.time())
        loop = asyncio.get_running_loop()
        return loop.call_later(delay, lambda: loop.create_task(self._expire(sid)))

    async def _expire(self, sid: str) -> None:
        """Token ran out and was not refreshed: say so, then disconnect."""
        try:
            await self.push(sid, "session:expired", {"code": "token_expired", "message": "The token has expired"})
            await self.disconnect(sid)
        except Exception:  # the socket may already be gone
            log.debug("expiry of %s raced a disconnect", sid)

    async def _safely(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception as exc:
            if is_dependency_failure(exc):
                log.warning("dependency unavailable during connect bookkeeping: %s", type(exc).__name__)
            else:
                log.exception("connect bookkeeping failed")

    # -- requests -------------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Route connect/disconnect as usual and every other event through `handle_request`."""
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        return await self.handle_request(event, args[0], args[1:])

    async def handle_request(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """Run one request and return its ack envelope; never raises."""
        started = time.perf_counter()
        spec = self.requests.get(event)
        user: User | None = None
        try:
            user = (await self.get_session(sid)).get("user")
            if user is None:
                raise Unauthorized("Not authenticated")
            envelope = ok(await self.answer(event, spec, sid, user, args))
        except AppError as error:
            envelope = fail(error)
        except Exception as exc:
            envelope = fail(self._unexpected(exc, event))
        self._record(spec.event if spec else "unknown", user, envelope, started)
        return envelope

    async def answer(self, event: str, spec: RequestSpec | None, sid: str, user: User,
                     args: tuple[Any, ...]) -> Any:
        """The ack data of one admitted request (raises AppError for the failure envelope)."""
        if spec is None:
            raise InvalidPayload(f"Unknown event {event[:64]!r}", {"event": ["Unknown event."]})
        payload = await self._admit(spec, user, args)
        return spec.answer(await getattr(self, spec.method)(sid, user, payload))

    async def _admit(self, spec: RequestSpec, user: User, args: tuple[Any, ...]) -> dict[str, Any]:
        """Size, rate, role and schema checks, in that order; returns the loaded payload."""
        if len(args) > 1 or (args and not isinstance(args[0], dict)):
            raise InvalidPayload("The payload must be one object", {"_payload": ["Must be one object."]})
        raw: dict[str, Any] = args[0] if args else {}
        if len(orjson.dumps(raw)) > self.shared.config.max_payload_bytes + spec.extra_bytes:
            raise InvalidPayload("The payload is too large", {"_payload": ["Too large."]})
        await self._limit(spec, user)
        if spec.roles is not None and user.role not in spec.roles:
            raise Forbidden(f"Only {' or '.join(spec.roles)} users may do this")
        if spec.loader is None:
            return raw
        try:
            loaded: dict[str, Any] = spec.loader.load(raw)
            return loaded
        except ValidationError as error:
            raise InvalidPayload("The payload is not valid", error.messages) from None

    async def _limit(self, spec: RequestSpec, user: User) -> None:
        config = self.shared.config
        burst, per_second = spec.rate or (config.rate_limit_burst, config.rate_limit_per_second)
        wait_ms = await self.shared.rate_limiter.take(f"{self.namespace}:{spec.event}:{user.id}", burst,
                                                      per_second)
        if wait_ms:
            raise RateLimited(wait_ms)

    def _unexpected(self, exc: Exception, event: str) -> AppError:
        dependency = failed_dependency(exc)
        if dependency is not None:
            log.warning("dependency unavailable handling %s: %s", event[:64], type(exc).__name__)
            return Unavailable("A dependency is unavailable, try again shortly", {"dependency": dependency})
        log.exception("internal error handling %s", event[:64])
        return Internal()

    def _record(self, event: str, user: User | None, envelope: dict[str, Any], started: float) -> None:
        elapsed = time.perf_counter() - started
        code = "ok" if envelope["ok"] else envelope["error"]["code"]
        self.metrics.request_done(self.namespace, event, code, elapsed)
        log.info("request", extra={"namespace": self.namespace, "event": event, "code": code,
                                   "user": user.id if user else None, "ms": round(elapsed * 1000, 2)})

    # -- requests every namespace has -------------------------------------------------------------

    @request("session:refresh", RefreshSession, ack=SessionRefreshed, rate=(5, 0.2))
    async def refresh_session(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, datetime]:
        """Adopt a newer token for the same user and push the disconnect deadline back."""
        identity: Identity = self.shared.auth.verify(payload["token"])
        if identity.user.id != user.id or identity.user.role != user.role:
            raise Forbidden("The token belongs to another user")
        async with self.session(sid) as session:
            if identity.expires_at < session["exp"]:
                raise PreconditionFailed("The token expires before the current one")
            session["timer"].cancel()
            session.update(user=identity.user, exp=identity.expires_at,
                           timer=self._arm_expiry(sid, identity.expires_at))
        return {"expires_at": datetime.fromtimestamp(identity.expires_at, timezone.utc)}


BaseNamespace.requests = _collect_requests(BaseNamespace)
BaseNamespace.all_emits = _collect_emits(BaseNamespace)
