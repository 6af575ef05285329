"""careline: create_app(config) builds the aiohttp application; main() runs the server, the worker or the token tool.

    python server.py                      run the web server
    python server.py worker               run background jobs only (needs MONGODB_URI and REDIS_URL)
    python server.py token --sub U --role client|therapist|admin [--name N] [--ttl SECONDS]
    python server.py jobs                 print every background queue's depth, oldest due job and failed jobs

A feature is one line of FEATURES: its namespace class, the function that builds its handler from the
shared resources, and (if it has any) its REST routes and the app key its views find the handler under.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

import logsetup
import rest.billing
import rest.notifications
from clock import Clock, utcnow
from config import Config, ConfigError
from handlers.auth import Authenticator, mint_token
from handlers.billing import feature as billing
from handlers.booking import feature as booking
from handlers.chat import feature as chat
from handlers.documents import DocumentLinks
from handlers.events import EventBus
from handlers.feature import Built, Shared
from handlers.jobs import JobCounters, Periodic, run_all, run_periodic
from handlers.meetings import feature as meetings
from handlers.metrics import Metrics
from handlers.notifications import feature as notifications
from handlers.publisher import Publisher
from handlers.queues import JobMonitor, table
from handlers.relations import Relations
from handlers.worksheets import feature as worksheets
from realtime.base import BaseNamespace
from realtime.billing import BillingNamespace
from realtime.booking import BookingNamespace
from realtime.chat import ChatNamespace
from realtime.engine.server import CarelineServer
from realtime.meetings import MeetingsNamespace
from realtime.notifications import NotificationsNamespace
from realtime.publisher import ManagerPublisher, SocketPublisher
from realtime.server import create_sio, redis_manager, shutdown
from realtime.unavailable import UnavailableNamespace
from realtime.wire import WireFormat
from realtime.worksheets import WorksheetsNamespace
from rest import documents, ops, uploads
from rest.app_keys import BILLING, CHAT, CONFIG, CONNECTIONS, HANDLERS, JOBS, METRICS, MONGO_DB, NOTIFICATIONS, SHARED
from rest.middleware import cors_middleware, error_middleware
from stores.crypto import Cipher
from stores.database import Connections, open_connections, open_database
from stores.documents import DocumentStore
from stores.mongo import patient
from stores.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from stores.request_keys import RequestKeyStore
from stores.sockets import HEARTBEAT_SECONDS, MemorySocketRegistry, RedisSocketRegistry, SocketRegistry
from stores.users import UserStore

log = logging.getLogger("careline")
H = TypeVar("H")

SIO = web.AppKey("sio", CarelineServer)


@dataclass(frozen=True)
class Slice(Generic[H]):
    """One feature: its namespace, how its handler is built, and its REST routes (with the key views read)."""

    namespace: type[BaseNamespace[H]]
    build: Callable[[Shared], Awaitable[Built[H]]]
    routes: Callable[[web.Application], None] | None = None
    key: web.AppKey[H] | None = None

    @property
    def path(self) -> str:
        """The namespace path."""
        return self.namespace.path


async def _not_built(shared: Shared) -> Built[None]:
    return Built(None)


def not_built(namespace: type[UnavailableNamespace]) -> Slice[None]:
    """A contract namespace whose feature this server does not have yet: requests answer `unavailable`."""
    return Slice(namespace, _not_built)


FEATURES: tuple[Slice[Any], ...] = (
    Slice(NotificationsNamespace, notifications.build, rest.notifications.setup, NOTIFICATIONS),
    Slice(ChatNamespace, chat.build, uploads.setup, CHAT),
    Slice(BookingNamespace, booking.build),
    Slice(MeetingsNamespace, meetings.build),
    Slice(WorksheetsNamespace, worksheets.build),
    Slice(BillingNamespace, billing.build, rest.billing.setup, BILLING),
)


def wire_format() -> WireFormat:
    """The output schema of every server event of every feature."""
    return WireFormat(feature.namespace for feature in FEATURES)


def shared_resources(config: Config, connections: Connections, publisher: Publisher, sockets: SocketRegistry,
                     clock: Clock) -> Shared:
    """What every feature is built from."""
    redis = connections.redis
    limiter: RateLimiter = RedisRateLimiter(redis, config.redis_prefix) if redis is not None else MemoryRateLimiter()
    users, cipher = UserStore(connections.db), Cipher(config.message_keys)
    return Shared(config=config, db=connections.db, redis=redis, clock=clock, bus=EventBus(), publisher=publisher,
                  sockets=sockets, rate_limiter=limiter, auth=Authenticator(config),
                  cipher=cipher, users=users, request_keys=RequestKeyStore(connections.db),
                  relations=Relations(users),
                  documents=DocumentLinks(DocumentStore(connections.db, cipher), config, clock))


def socket_registry(config: Config, connections: Connections) -> SocketRegistry:
    """Live-socket tracking: in Redis when processes share it, else in memory."""
    if connections.redis is not None:
        return RedisSocketRegistry(connections.redis, config.redis_prefix)
    return MemorySocketRegistry()


async def build_features(shared: Shared) -> list[tuple[Slice[Any], Built[Any]]]:
    """Build every feature in FEATURES order (users' indexes first: every feature records users).

    Index builds and migrations may take longer than a request may wait: they get start-up time.
    """
    with patient():
        await shared.users.ensure_indexes()
        await shared.request_keys.ensure_indexes()
        await shared.documents.store.ensure_indexes()
        return [(feature, await feature.build(shared)) for feature in FEATURES]


async def close_features(shared: Shared, built: list[tuple[Slice[Any], Built[Any]]]) -> None:
    """Close features in reverse order (the domain events a closing feature raises reach the ones still open)."""
    for _feature, each in reversed(built):
        await shared.bus.drain()
        await each.close()
    await shared.bus.drain()
    await shared.users.flush_touched()  # lastSeenAt of the sockets closed at shutdown, written behind


def _jobs(built: list[tuple[Slice[Any], Built[Any]]]) -> list[Periodic]:
    return [job for _feature, each in built for job in each.jobs]


async def _connections_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_connections(app[CONFIG], on_embedded_restart=app[METRICS].embedded_db_restarts.inc) as connections:
        app[CONNECTIONS], app[MONGO_DB] = connections, connections.db
        yield


async def _features_ctx(app: web.Application, clock: Clock) -> AsyncIterator[None]:
    config, connections, sio = app[CONFIG], app[CONNECTIONS], app[SIO]
    sockets = socket_registry(config, connections)
    publisher = SocketPublisher(sio, sockets, wire_format())
    shared = shared_resources(config, connections, publisher, sockets, clock)
    app[SHARED] = shared
    built = await build_features(shared)
    app[HANDLERS] = {feature.path: each.handler for feature, each in built}
    app[JOBS] = _jobs(built)
    for feature, each in built:
        if feature.key is not None:
            app[feature.key] = each.handler
        sio.register_namespace(feature.namespace(each.handler, shared, app[METRICS]))
    stop = asyncio.Event()
    background = [asyncio.create_task(run_periodic(Periodic("socket-registry-heartbeat", HEARTBEAT_SECONDS,
                                                            sockets.heartbeat), stop))]
    if config.run_worker_in_web:
        background.append(asyncio.create_task(run_all(app[JOBS], stop)))
    yield
    stop.set()
    await asyncio.gather(*background)
    await close_features(shared, built)
    await sockets.close()


async def _close_sockets(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for in-flight requests, so pending polls end now.
    await shutdown(app[SIO])


async def _stop_supervising(app: web.Application) -> None:
    # Shutdown has begun: the embedded database is not restarted from here on.
    if CONNECTIONS in app:
        await app[CONNECTIONS].stop_supervising()


def create_app(config: Config, clock: Clock = utcnow) -> web.Application:
    """The careline application: Socket.IO namespaces, REST routes, and their resources."""
    app = web.Application(middlewares=[cors_middleware, error_middleware], client_max_size=1024 ** 2)
    app[CONFIG], app[METRICS] = config, Metrics()
    sio = create_sio(config)
    sio.inflow.allow_extra_bytes(max(spec.extra_bytes for feature in FEATURES
                                     for spec in feature.namespace.requests.values()))
    sio.attach(app)
    app[SIO] = sio
    app.cleanup_ctx.extend([_connections_ctx, functools.partial(_features_ctx, clock=clock)])
    app.on_shutdown.extend([_stop_supervising, _close_sockets])
    ops.setup(app)
    documents.setup(app)
    for feature in FEATURES:
        if feature.routes is not None:
            feature.routes(app)
    return app


async def run_worker(config: Config) -> None:
    """Run background jobs only, until SIGTERM or SIGINT."""
    if config.embedded_mongo or not config.redis_url:
        raise ConfigError("the worker needs MONGODB_URI and REDIS_URL (with the embedded default, "
                          "background jobs run inside the web process)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    publisher = ManagerPublisher(redis_manager(config, write_only=True), wire_format())
    async with open_connections(config) as connections:
        shared = shared_resources(config, connections, publisher, socket_registry(config, connections), utcnow)
        built = await build_features(shared)
        ops_site = await _serve_worker_ops(config, connections, built)
        log.info("worker started")
        try:
            await run_all(_jobs(built), stop)
        finally:
            if ops_site is not None:
                await ops_site.cleanup()
            await close_features(shared, built)


async def _serve_worker_ops(config: Config, connections: Connections,
                            built: list[tuple[Slice[Any], Built[Any]]]) -> web.AppRunner | None:
    """/health, /ready and /metrics of a worker on WORKER_PORT (None when 0): its jobs' successes, retries and
    failures are counted in this process, so it must be scraped like a web process."""
    if not config.worker_port:
        return None
    app = web.Application()
    app[CONNECTIONS], app[METRICS] = connections, Metrics()
    app[NOTIFICATIONS] = next(each.handler for feature, each in built if feature.key is NOTIFICATIONS)
    ops.setup(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.worker_port).start()
    except OSError as error:  # another worker on this host has the port: run the jobs anyway
        log.warning("WORKER_PORT %d is not free (%s): this worker's /metrics is not served", config.worker_port,
                    type(error).__name__)
        await runner.cleanup()
        return None
    return runner


def _token_command(config: Config, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="server.py token", description="Print a signed development JWT.")
    parser.add_argument("--sub", required=True, help="user id")
    parser.add_argument("--role", required=True, choices=("client", "therapist", "admin"))
    parser.add_argument("--name", default=None, help="display name")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    print(mint_token(config, args.sub, args.role, args.name, args.ttl))


async def print_jobs(config: Config) -> None:
    """`python server.py jobs`: every queue read from the database (the configured one, or the embedded
    database's files when no MONGODB_URI is set; those belong to one process, so stop the server first).
    Successes, retries and failures are counted by each running process: see its /metrics."""
    async with open_database(config) as (_client, db, _embedded, _supervisor):
        monitor = JobMonitor(db, JobCounters(), utcnow, config)
        print(table(await monitor.statuses()))


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _freeze_startup_objects(_app: web.Application) -> None:
    """Keep what start-up built (modules, schemas, services) out of every later full collection,
    whose pauses otherwise land on request latency."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """Entry point: web server (default), `worker`, or `token`."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        config = Config.from_env()
    except (ConfigError, ValueError) as exc:
        print(f"careline: configuration error: {exc}", file=sys.stderr)
        return 2
    if argv[:1] == ["token"]:
        _token_command(config, argv[1:])
        return 0
    if argv[:1] == ["jobs"]:
        logsetup.configure("WARNING", config.log_format)
        asyncio.run(print_jobs(config))
        return 0
    logsetup.configure(config.log_level, config.log_format)
    for notice in config.notices:
        log.warning(notice)
    _install_uvloop()
    try:
        if argv[:1] == ["worker"]:
            asyncio.run(run_worker(config))
        else:
            app = create_app(config)
            app.on_startup.append(_freeze_startup_objects)
            web.run_app(app, host=config.host, port=config.port, print=None, access_log=None, shutdown_timeout=10)
    except ConfigError as exc:
        print(f"careline: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
