"""The handlers and shared services of one running app, handed to namespaces and views by constructor."""
from __future__ import annotations

from dataclasses import dataclass, field

from config import Config
from handlers.auth import Authenticator
from handlers.chat import ChatHandler
from handlers.availability import AvailabilityHandler
from handlers.booking import BookingHandler
from handlers.events import EventBus
from handlers.jobs import Periodic
from handlers.notifications import NotificationHandler
from handlers.preferences import PreferenceHandler
from handlers.push import PushHandler
from handlers.publisher import Publisher
from handlers.uploads import UploadHandler
from stores.crypto import Cipher
from stores.presence import SocketRegistry
from stores.ratelimit import RateLimiter
from stores.uploads import UploadStore
from stores.users import UserStore


@dataclass
class Services:
    """Everything a namespace or REST view may call."""

    config: Config
    auth: Authenticator
    bus: EventBus
    publisher: Publisher
    rate_limiter: RateLimiter
    users: UserStore
    sockets: SocketRegistry
    cipher: Cipher
    uploads: UploadStore
    upload_handler: UploadHandler
    chat: ChatHandler
    availability: AvailabilityHandler = field(init=False)
    booking: BookingHandler = field(init=False)
    periodic: list[Periodic] = field(default_factory=list)
    notifications: NotificationHandler = None  # type: ignore[assignment]  # set by server.build_services
    notification_prefs: PreferenceHandler = None  # type: ignore[assignment]
    push: PushHandler = None  # type: ignore[assignment]
