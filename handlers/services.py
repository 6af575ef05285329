"""The handlers and shared services of one running app, handed to namespaces and views by constructor."""
from __future__ import annotations

from dataclasses import dataclass, field

from config import Config
from handlers.auth import Authenticator
from handlers.booking.availability import AvailabilityHandler
from handlers.booking.bookings import BookingHandler
from handlers.chat.feature import ChatHandler
from handlers.events import EventBus
from handlers.jobs import Periodic
from handlers.notifications.handler import NotificationHandler
from handlers.notifications.preferences import PreferenceHandler
from handlers.notifications.push import PushHandler
from handlers.publisher import Publisher
from handlers.chat.uploads import UploadHandler
from stores.crypto import Cipher
from stores.sockets import SocketRegistry
from stores.ratelimit import RateLimiter
from stores.chat.uploads import UploadStore
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
    periodic: list[Periodic] = field(default_factory=list)
    # Features built after the shared services exist (server.build_services sets them):
    notifications: NotificationHandler = field(init=False)
    notification_prefs: PreferenceHandler = field(init=False)
    push: PushHandler = field(init=False)
    availability: AvailabilityHandler = field(init=False)
    booking: BookingHandler = field(init=False)
