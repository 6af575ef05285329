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
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, Literal, TypeVar

import orjson
import socketio
from marshmallow import Schema, ValidationError

from errors import (
    AppError,
    Conflict,
    Forbidden,
    Internal,
    InvalidPayload,
    PreconditionFailed,
    RateLimited,
    RequestIdReused,
    TokenExpired,
    Unauthorized,
    Unavailable,
)
from handlers.auth import Identity, User
from handlers.credentials import check_cookie_origin, find_credentials
from handlers.feature import Shared
from handlers.metrics import Metrics
from handlers.publisher import role_room, room_group, user_room
from realtime.engine.wheel import TimerWheel
from realtime.schemas.common import (
    PeopleOut,
    RefreshSession,
    RequestSchema,
    SessionExpired,
    SessionRefreshed,
    UserLookup,
)
from stores.errors import failed_dependency, is_dependency_failure

log = logging.getLogger("careline.realtime")

Method = Callable[[Any, str, User, dict[str, Any]], Awaitable[Any]]
H = TypeVar("H")
Rate = tuple[int, float]

#: deepest nesting of objects and arrays a payload may have (a payload is one object: depth 1)
MAX_PAYLOAD_DEPTH = 32
#: the rate-limit bucket every unknown event name of a namespace shares, per user
UNKNOWN_EVENT = "?unknown"
#: how late (seconds) at most a socket hears `session:expired` after its token's `exp`
EXPIRY_TICK = 0.25


def fingerprint(payload: dict[str, Any]) -> str:
    """A digest of a loaded payload (times normalised by the schema, keys sorted)."""
    encoded = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()


def shape_problem(payload: Any, max_depth: int = MAX_PAYLOAD_DEPTH) -> str | None:
    """Why a decoded payload cannot be a request (binary part, too deep), checked without recursion."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        elif isinstance(value, (bytes, bytearray, memoryview)):
            return "Binary data is not accepted."
        else:
            continue
        if depth > max_depth:
            return f"Nested more than {max_depth} levels deep."
        stack.extend((child, depth + 1) for child in children)
    return None


#: how a request with a `requestId` is kept idempotent (CONTRACT §1):
#: "ledger"  its key is claimed in `request_keys` (another payload -> conflict); the handler returns the first
#:           result of a repeat itself (unique indexes on the created record)
#: "replay"  as "ledger", and the first ack is kept and replayed (for handlers that are not idempotent themselves;
#:           only for acks without health details)
#: "handler" the handler does both itself (message:send: no extra write on the hot path)
Idempotency = Literal["ledger", "replay", "handler"]


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
    idempotency: Idempotency = "ledger"
    extra_bytes: int = 0  # allowed on top of MAX_PAYLOAD_BYTES (a signal's 64 KiB SDP plus its envelope)
    nullable: bool = False  # a None result answers `data: null` (the contract's `X | null`), not `{}`

    @functools.cached_property
    def keyed(self) -> bool:
        """True when the request takes a `requestId` and careline checks its reuse."""
        declared = self.schema._declared_fields if self.schema is not None else {}
        return self.idempotency != "handler" and "request_id" in declared

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
            idempotency: Idempotency = "ledger", extra_bytes: int = 0,
            nullable: bool = False) -> Callable[[Method], Method]:
    """Declare a namespace method as the handler of client event `event` (ack=None answers `{}`; a None
    result answers `{}` too, or `null` with nullable=True)."""
    def mark(method: Method) -> Method:
        summary = (method.__doc__ or "").strip().splitlines()[0] if method.__doc__ else ""
        vars(method)["_careline_request"] = RequestSpec(event, schema, ack, rate, roles, summary=summary,
                                                        idempotency=idempotency, extra_bytes=extra_bytes,
                                                        nullable=nullable)
        return method
    return mark


def ok(data: Any, nullable: bool = False) -> dict[str, Any]:
    """The success envelope (None as `{}`, or as `null` when the request's ack is nullable)."""
    return {"ok": True, "data": {} if data is None and not nullable else data}


def fail(error: AppError) -> dict[str, Any]:
    """The failure envelope."""
    return {"ok": False, "error": error.to_dict()}


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
    #: True when `on_user_connected` / `on_user_disconnected` register and unregister the socket in its user
    #: room's registry group themselves (presence: the count each of those operations returns is what tells,
    #: in order with every other socket of the user, whether it was the first or the last one)
    tracks_user_room: ClassVar[bool] = False
    #: client events handled in the connection's reader instead of a task each (realtime/engine/server.py): a socket's
    #: packets after one of them wait until it is answered, so they are handled one at a time, in the order sent
    ordered_events: ClassVar[frozenset[str]] = frozenset()

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
        # every socket's token expiry on one loop timer (EXPIRY_TICK late at most; a timer each cost ~0.7 KB)
        self._expiries: TimerWheel[str] = TimerWheel(EXPIRY_TICK, self._expiry_due)
        self._expiring: set[asyncio.Task[None]] = set()

    async def push(self, sid: str, event: str, payload: Any) -> None:
        """Emit one of this namespace's server events to one socket, in its declared wire shape."""
        await self.emit(event, self._event_dumpers[event].dump(payload), to=sid)

    # -- connection lifecycle -------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Authenticate the socket or refuse it with `{code, message}`."""
        try:
            identity = self.shared.auth.verify(self._token(environ, auth))
        except AppError as error:
            self.metrics.connect_refused.labels(self.namespace, error.code).inc()
            log.info("connect refused", extra={"namespace": self.namespace, "code": error.code})
            raise socketio.exceptions.ConnectionRefusedError(error.message, error.to_dict()) from None
        user = identity.user
        await self.save_session(sid, {"user": user, "exp": identity.expires_at})
        self._arm_expiry(sid, identity.expires_at)
        await self.enter_room(sid, role_room(user.role))
        # In the room even when the registry (Redis) is down: delivery works, presence may lag.
        if self.tracks_user_room:
            await self.enter_room(sid, user_room(user.id))
        else:
            await self._safely(self.shared.publisher.join(self.namespace, sid, user_room(user.id), user.id))
        self.metrics.sockets_of(self.namespace).inc()
        log.info("connect", extra={"namespace": self.namespace, "user": user.id, "sid": sid})
        await self._safely(self.shared.users.upsert_seen(user.id, user.role, user.name, user.email))
        await self._safely(self.on_user_connected(sid, user))

    def _token(self, environ: dict[str, Any], auth: Any) -> object:
        """The handshake's token: `auth.token`, the Bearer header, or the session cookie from a listed origin."""
        explicit = auth.get("token") if isinstance(auth, dict) else None
        found = find_credentials(self.shared.config, explicit, environ.get("HTTP_AUTHORIZATION"),
                                 environ.get("HTTP_COOKIE"))
        if found.from_cookie:
            try:
                check_cookie_origin(self.shared.config, environ.get("HTTP_ORIGIN"), required=True)
            except Forbidden as refused:  # connect_error codes are unauthorized | token_expired (CONTRACT §1)
                raise Unauthorized(refused.message) from None
        return found.token

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """Forget the socket's timers and tell the feature."""
        session = await self.get_session(sid)
        user: User | None = session.get("user")
        if user is None:
            return
        self._expiries.discard(sid)
        self.metrics.sockets_of(self.namespace).dec()
        await self._safely(self._forget_rooms(sid, user))
        log.info("disconnect", extra={"namespace": self.namespace, "user": user.id, "sid": sid,
                                      "reason": str(reason)})
        await self._safely(self.on_user_disconnected(sid, user))

    async def _forget_rooms(self, sid: str, user: User) -> None:
        """Unregister the socket from every tracked room (user and feature rooms) it was in (but its user room
        when the namespace tracks it itself, `tracks_user_room`)."""
        kept = user_room(user.id) if self.tracks_user_room else None
        for room in self.rooms(sid):
            if room != sid and room != kept and not room.startswith("role:"):
                await self.shared.sockets.remove(room_group(self.namespace, room), sid, user.id)

    async def on_user_connected(self, sid: str, user: User) -> None:
        """Feature hook: an authenticated socket joined this namespace."""

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """Feature hook: an authenticated socket left this namespace."""

    def _arm_expiry(self, sid: str, expires_at: float) -> None:
        """(Re)schedule the socket's `session:expired` and disconnect for when its token runs out."""
        self._expiries.add(sid, max(0.0, expires_at - time.time()))

    def _expiry_due(self, sid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._expire(sid))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

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

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Route connect/disconnect as usual and every other event through `handle_request`."""
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        return await self.handle_request(event, args[0], args[1:])

    async def handle_request(self, event: Any, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """Run one request and return its ack envelope; never raises."""
        started = time.perf_counter()
        spec = self.requests.get(event) if isinstance(event, str) else None
        user: User | None = None
        try:
            user = await self._user_of(sid)
            envelope = ok(await self.answer(event, spec, sid, user, args), spec is not None and spec.nullable)
        except AppError as error:
            envelope = fail(error)
        except Exception as exc:
            envelope = fail(self._unexpected(exc, spec.event if spec else "unknown"))
        self._record(spec.event if spec else "unknown", user, envelope, started)
        return envelope

    async def _user_of(self, sid: str) -> User:
        """The socket's user; `unauthorized` for a socket gone meanwhile (a request queued at disconnect)."""
        try:
            user: User | None = (await self.get_session(sid)).get("user")
        except KeyError:
            user = None
        if user is None:
            raise Unauthorized("Not authenticated")
        return user

    async def answer(self, event: Any, spec: RequestSpec | None, sid: str, user: User,
                     args: tuple[Any, ...]) -> Any:
        """The ack data of one admitted request (raises AppError for the failure envelope)."""
        if spec is None:
            await self._take(UNKNOWN_EVENT, None, user)
            if not isinstance(event, str):
                raise InvalidPayload("The event name must be a string", {"event": ["Must be a string."]})
            raise InvalidPayload(f"Unknown event {event[:64]!r}", {"event": ["Unknown event."]})
        payload = await self._admit(spec, user, args)
        request_id = payload.get("request_id") if spec.keyed else None
        if request_id is None:
            return spec.answer(await getattr(self, spec.method)(sid, user, payload))
        return await self._answer_once(spec, sid, user, payload, request_id)

    async def _answer_once(self, spec: RequestSpec, sid: str, user: User, payload: dict[str, Any],
                           request_id: str) -> Any:
        """Run a request under its claimed `requestId` (module note on `Idempotency`)."""
        keys, event, digest = self.shared.request_keys, spec.event, fingerprint(payload)
        earlier = await keys.claim(user.id, event, request_id, digest, self.shared.clock())
        if earlier is not None and earlier.fingerprint != digest:
            raise RequestIdReused()
        if spec.idempotency == "replay" and earlier is not None:
            if not earlier.answered:
                raise Conflict("The first request with this requestId is still running", {"reason": "in progress"})
            return earlier.result
        try:
            data = spec.answer(await getattr(self, spec.method)(sid, user, payload))
        except AppError:  # refused, nothing created: the requestId may be used again
            if earlier is None:
                await keys.release(user.id, event, request_id)
            raise
        if spec.idempotency == "replay":
            await keys.answered(user.id, event, request_id, data)
        return data

    async def _admit(self, spec: RequestSpec, user: User, args: tuple[Any, ...]) -> dict[str, Any]:
        """Rate, shape, size, role and schema checks, in that order; returns the loaded payload."""
        await self._take(spec.event, spec.rate, user)
        if len(args) > 1 or (args and not isinstance(args[0], dict)):
            raise InvalidPayload("The payload must be one object", {"_payload": ["Must be one object."]})
        raw: dict[str, Any] = args[0] if args else {}
        problem = shape_problem(raw)
        if problem is not None:
            raise InvalidPayload("The payload is not valid", {"_payload": [problem]})
        if len(orjson.dumps(raw)) > self.shared.config.max_payload_bytes + spec.extra_bytes:
            raise InvalidPayload("The payload is too large", {"_payload": ["Too large."]})
        if spec.roles is not None and user.role not in spec.roles:
            raise Forbidden(f"Only {' or '.join(spec.roles)} users may do this")
        if spec.loader is None:
            return raw
        quick = spec.loader.quick_load(raw) if isinstance(spec.loader, RequestSchema) else None
        if quick is not None:
            return quick
        try:
            loaded: dict[str, Any] = spec.loader.load(raw)
            return loaded
        except ValidationError as error:
            raise InvalidPayload("The payload is not valid", error.messages) from None

    async def _take(self, event: str, rate: Rate | None, user: User) -> None:
        """One token of the user's bucket for `event` (every unknown name shares one bucket)."""
        config = self.shared.config
        burst, per_second = rate or (config.rate_limit_burst, config.rate_limit_per_second)
        wait_ms = await self.shared.rate_limiter.take(f"{self.namespace}:{event}:{user.id}", burst, per_second)
        if wait_ms:
            raise RateLimited(wait_ms)

    def _unexpected(self, exc: Exception, event: str) -> AppError:
        dependency = failed_dependency(exc)
        if dependency is not None:
            log.warning("dependency unavailable handling %s: %s", event, type(exc).__name__)
            return Unavailable("A dependency is unavailable, try again shortly", {"dependency": dependency})
        log.exception("internal error handling %s", event)
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
        try:
            identity: Identity = self.shared.auth.verify(payload["token"])
        except TokenExpired:
            raise Unauthorized("The token has expired", {"reason": "expired"}) from None
        if identity.user.id != user.id or identity.user.role != user.role:
            raise Forbidden("The token belongs to another user")
        async with self.session(sid) as session:
            if identity.expires_at < session["exp"]:
                raise PreconditionFailed("The token expires before the current one")
            session.update(user=identity.user, exp=identity.expires_at)
            self._arm_expiry(sid, identity.expires_at)
        return {"expires_at": datetime.fromtimestamp(identity.expires_at, timezone.utc)}


    @request("user:lookup", UserLookup, ack=PeopleOut, rate=(30, 2.0))
    async def lookup_users(self, sid: str, user: User, payload: dict[str, Any]) -> dict[str, Any]:
        """Names and roles of people the caller shares a conversation, booking, meeting or assignment with."""
        return {"items": await self.shared.relations.lookup(user, payload["ids"])}


BaseNamespace.requests = _collect_requests(BaseNamespace)
BaseNamespace.all_emits = _collect_emits(BaseNamespace)
