"""careline: create_app(config) builds the aiohttp application; main() runs the server, the worker or the token tool.

    python server.py                      run the web server
    python server.py worker               run background jobs only (needs MONGODB_URI and REDIS_URL)
    python server.py token --sub U --role client|therapist|admin [--name N] [--ttl SECONDS]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from datetime import timedelta
from typing import Any, AsyncIterator

from aiohttp import web

import logsetup
from config import Config, ConfigError
from rest.app_keys import CONFIG, EMBEDDED_MONGO, METRICS, MONGO_CLIENT, MONGO_DB, REDIS, SERVICES, SIO
from handlers import jobs
from handlers.notifications import rules as notification_rules
from handlers.auth import Authenticator, mint_token
from handlers.chat.feature import build_chat
from handlers.booking.availability import AvailabilityHandler
from handlers.booking.bookings import BookingHandler
from handlers.events import EventBus
from handlers.notifications.handler import NotificationHandler
from handlers.notifications.preferences import PreferenceHandler
from handlers.publisher import Publisher
from handlers.notifications.push import PushHandler
from handlers.booking.reminders import ReminderScheduler
from handlers.services import Services
from handlers.chat.uploads import UploadHandler
from handlers.metrics import Metrics
from realtime.publisher import ManagerPublisher, SocketPublisher
from realtime.server import create_sio, redis_manager, register_namespaces, shutdown
from rest.middleware import cors_middleware, error_middleware
from rest.routes import setup_routes
from stores import mongo, redis as redis_store
from stores.booking.availability import AvailabilityStore
from stores.booking.bookings import BookingStore
from stores.crypto import Cipher
from stores.embedded import EmbeddedMongo, default_storage
from clock import utcnow
from stores.mongo import Database
from stores.notifications.preferences import PreferenceStore
from stores.notifications.store import NotificationStore
from stores.sockets import HEARTBEAT_SECONDS, MemorySocketRegistry, RedisSocketRegistry, SocketRegistry
from stores.notifications.push import PushStore
from stores.ratelimit import MemoryRateLimiter, RedisRateLimiter
from stores.chat.uploads import UploadStore
from stores.booking.reminders import ReminderStore
from stores.users import UserStore

log = logging.getLogger("careline")


def socket_registry(config: Config, redis: Any) -> SocketRegistry:
    """Live-socket tracking: in Redis when processes share it, else in memory."""
    return RedisSocketRegistry(redis, config.redis_prefix) if redis is not None else MemorySocketRegistry()


async def build_services(config: Config, db: Database, redis: Any, publisher: Publisher,
                         sockets: SocketRegistry) -> Services:
    """Create every store and handler, ensure indexes, and wire domain-event subscriptions."""
    users = UserStore(db)
    await users.ensure_indexes()
    limiter = RedisRateLimiter(redis, config.redis_prefix) if redis is not None else MemoryRateLimiter()
    cipher = Cipher(config.message_keys)
    uploads = UploadStore(db, cipher)
    await uploads.ensure_indexes()
    bus = EventBus()
    chat = await build_chat(config, db, redis, cipher, users, uploads, publisher, sockets, bus)
    services = Services(config=config, auth=Authenticator(config), bus=bus, publisher=publisher,
                        rate_limiter=limiter, users=users, sockets=sockets, cipher=cipher, uploads=uploads,
                        upload_handler=UploadHandler(uploads, config.upload_max_bytes, chat.member_of_any),
                        chat=chat)
    await _build_notifications(db, services)
    await _build_booking(services, db)
    return services


async def _build_notifications(db: Database, services: Services) -> None:
    """Notifications, preferences and the domain events that feed them."""
    config = services.config
    store, prefs, pushes = NotificationStore(db), PreferenceStore(db), PushStore(db)
    for each in (store, prefs, pushes):
        await each.ensure_indexes()
    services.push = PushHandler(pushes, store, config, concurrency=config.push_concurrency,
                                retry_base=config.push_retry_base)
    services.notification_prefs = PreferenceHandler(prefs)
    services.notifications = NotificationHandler(store, services.notification_prefs, services.publisher,
                                                 services.sockets, services.users, services.push)
    notification_rules.subscribe(services.bus, services.notifications)
    services.periodic.append(jobs.Periodic("notifications-held-pushes", config.push_release_interval,
                                           services.notifications.release_held_pushes))


async def _build_booking(services: Services, db: Database) -> None:
    """Availability, bookings and reminders; the scheduler runs as a periodic job."""
    stores = AvailabilityStore(db), BookingStore(db), ReminderStore(db)
    for store in stores:
        await store.ensure_indexes()
    availability_store, booking_store, reminder_store = stores
    services.availability = AvailabilityHandler(availability_store, booking_store, services.publisher, utcnow)
    reminders = ReminderScheduler(reminder_store, booking_store, services.notifications,
                                  timedelta(seconds=services.config.booking_lease_seconds))
    services.booking = BookingHandler(booking_store, services.availability, reminders, services.publisher,
                                      services.bus, services.cipher)
    services.periodic.append(jobs.Periodic("booking-scheduler", services.config.booking_tick_seconds,
                                           services.booking.tick))


@contextlib.asynccontextmanager
async def mongo_database(config: Config) -> AsyncIterator[tuple[Any, Database, EmbeddedMongo | None]]:
    """The database client, starting (and always stopping) the embedded server when no URI is set."""
    embedded = None
    uri = config.mongodb_uri
    if uri is None:
        embedded = EmbeddedMongo(default_storage(config.data_dir))
    try:
        if embedded is not None:
            await embedded.start_async()
            uri = embedded.uri
        client = mongo.connect(uri or "", pool_size=config.mongodb_pool_size, retry_writes=False if embedded else None)
        try:
            yield client, client[config.mongodb_db], embedded
        finally:
            await client.close()
    finally:
        if embedded is not None:
            embedded.stop()


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    async with mongo_database(app[CONFIG]) as (client, db, embedded):
        app[MONGO_CLIENT], app[MONGO_DB], app[EMBEDDED_MONGO] = client, db, embedded
        yield


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    client = redis_store.connect(config.redis_url) if config.redis_url else None
    app[REDIS] = client
    try:
        yield
    finally:
        if client is not None:
            await client.aclose()


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    sockets = socket_registry(app[CONFIG], app[REDIS])
    publisher = SocketPublisher(app[SIO], sockets)  # type: ignore[arg-type]
    services = await build_services(app[CONFIG], app[MONGO_DB], app[REDIS], publisher,  # type: ignore[arg-type]
                                     sockets)
    app[SERVICES] = services
    register_namespaces(app[SIO], services, app[METRICS])  # type: ignore[arg-type]
    stop = asyncio.Event()
    heartbeat = asyncio.create_task(jobs.run_periodic(
        jobs.Periodic("socket-registry-heartbeat", HEARTBEAT_SECONDS, sockets.heartbeat), stop))
    yield
    stop.set()
    await heartbeat
    await services.chat.close()
    await services.bus.drain()
    await services.push.close()
    await sockets.close()


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    services: Services = app[SERVICES]  # type: ignore[assignment]
    if not app[CONFIG].run_worker_in_web:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(jobs.run_all(services.periodic, stop))
    yield
    stop.set()
    await task


async def _close_sockets(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for in-flight requests, so pending polls end now.
    await shutdown(app[SIO])  # type: ignore[arg-type]


def create_app(config: Config) -> web.Application:
    """The careline application: Socket.IO namespaces, REST routes, and their resources."""
    app = web.Application(middlewares=[cors_middleware, error_middleware], client_max_size=1024 ** 2)
    app[CONFIG] = config
    app[METRICS] = Metrics()
    sio = create_sio(config)
    sio.attach(app)
    app[SIO] = sio
    app.cleanup_ctx.extend([_mongo_ctx, _redis_ctx, _services_ctx, _jobs_ctx])
    app.on_shutdown.append(_close_sockets)
    setup_routes(app)
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
    manager = redis_manager(config, write_only=True)
    redis = redis_store.connect(config.redis_url)
    async with mongo_database(config) as (_client, db, _embedded):
        services = await build_services(config, db, redis, ManagerPublisher(manager),
                                        socket_registry(config, redis))
        log.info("worker started")
        await jobs.run_all(services.periodic, stop)
        await services.bus.drain()
        await services.push.close()
    await redis.aclose()


def _token_command(config: Config, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="server.py token", description="Print a signed development JWT.")
    parser.add_argument("--sub", required=True, help="user id")
    parser.add_argument("--role", required=True, choices=("client", "therapist", "admin"))
    parser.add_argument("--name", default=None, help="display name")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    print(mint_token(config, args.sub, args.role, args.name, args.ttl))


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
