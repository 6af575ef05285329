"""careline configuration: one frozen Config, read from the environment through one declarative table.

Every environment variable is one `Setting` row in `SETTINGS`; `Config.from_env` only walks that table,
and README.md's configuration tables are generated from it (`python -m config --write-readme`).
This is a bottom module: it imports nothing from the rest of careline, aiohttp, socketio, pymongo or redis.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal


class ConfigError(Exception):
    """The environment does not describe a server that may start."""


class _BadValue(ValueError):
    """A parser's complaint about a value; `_read` prefixes it with the variable's name."""


# -- codecs -------------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def parse_message_keys(text: str) -> tuple[tuple[str, bytes], ...]:
    """Parse MESSAGE_KEYS: comma-separated `keyId:base64url(32 bytes)`, newest first."""
    keys = []
    for item in _csv(text):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise ConfigError("MESSAGE_KEYS must be a comma-separated list of keyId:base64url-key")
        try:
            key = b64url_decode(encoded)
        except (binascii.Error, ValueError):
            raise ConfigError(f"MESSAGE_KEYS key {kid!r} is not base64url") from None
        if len(key) != 32:
            raise ConfigError(f"MESSAGE_KEYS key {kid!r} must decode to 32 bytes (AES-256)")
        keys.append((kid, key))
    return tuple(keys)


# -- kinds of value -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """How a non-empty value is parsed, and what the README calls it."""

    name: str
    parse: Callable[[str], Any]


def _integer(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise _BadValue(f"must be an integer, got {raw!r}") from None


def _number(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _BadValue(f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise _BadValue(f"must be a finite number, got {raw!r}")
    return value


def _flag(raw: str) -> bool:
    word = raw.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise _BadValue(f"must be true or false (also 1/0, yes/no, on/off), got {raw!r}")


TEXT = Kind("text", str)
LOWER = Kind("text", lambda raw: raw.strip().lower())
UPPER = Kind("text", lambda raw: raw.strip().upper())
INTEGER = Kind("integer", _integer)
NUMBER = Kind("number", _number)
FLAG = Kind("`true` / `false`", _flag)
LIST = Kind("comma-separated list", _csv)
PATH = Kind("path", Path)
KEYS = Kind("`keyId:base64url(32 bytes)`, comma-separated", parse_message_keys)


# -- rules --------------------------------------------------------------------------------------------

def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Bounds:
    """Numeric limits of a setting (each optional)."""

    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None
    below: float | None = None

    def allows(self, value: float) -> bool:
        """True when the value is within every given limit."""
        return ((self.at_least is None or value >= self.at_least)
                and (self.at_most is None or value <= self.at_most)
                and (self.above is None or value > self.above)
                and (self.below is None or value < self.below))

    def words(self) -> str:
        """The limits as a sentence tail: `between 0 and 100`, `at least 1 and below 1`."""
        if self.at_least is not None and self.at_most is not None:
            return f"between {_num(self.at_least)} and {_num(self.at_most)}"
        parts = [f"{word} {_num(limit)}" for word, limit in
                 (("at least", self.at_least), ("at most", self.at_most), ("above", self.above),
                  ("below", self.below))
                 if limit is not None]
        return " and ".join(parts)


@dataclass(frozen=True)
class Required:
    """Production needs this variable (or one of `alternatives`); development may generate it once."""

    alternatives: tuple[str, ...] = ()
    reason: str = ""
    generate: Callable[[], str] | None = None
    what: str = ""

    def describe(self) -> str:
        """The README's production column."""
        others = " or ".join(f"`{name}`" for name in self.alternatives)
        return f"required (or {others})" if others else "required"

    def check(self, name: str, environ: Mapping[str, str]) -> None:
        """Raise ConfigError when neither the variable nor an alternative is set."""
        if any(_given(environ, each) for each in (name, *self.alternatives)):
            return
        if self.reason:
            raise ConfigError(f"production mode {self.reason}: set {name}")
        raise ConfigError(f"production mode needs {' or '.join((name, *self.alternatives))}")


Status = Literal["read", "not yet read"]
READ: Status = "read"
NOT_YET_READ: Status = "not yet read"
FIELD_DEFAULT: Any = object()  # the default is the Config field's default


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it lands in Config, how it is parsed and checked, what it means."""

    env: str
    field: str
    kind: Kind
    meaning: str
    default: Any = FIELD_DEFAULT  # a value, FIELD_DEFAULT, or a function of the environment
    shown: str = ""  # the README's default column, when the value alone says too little
    bounds: Bounds | None = None
    choices: tuple[str, ...] = ()
    production: Required | None = None
    status: Status = READ

    def default_for(self, environ: Mapping[str, str]) -> Any:
        """The value when the variable is unset or empty."""
        if self.default is FIELD_DEFAULT:
            return _FIELD_DEFAULTS[self.field]
        return self.default(environ) if callable(self.default) else self.default

    def check(self, value: Any) -> None:
        """Raise ConfigError naming the variable when the value is outside its bounds or choices."""
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.env} must be {' or '.join(repr(c) for c in self.choices)}")
        if self.bounds and value is not None and not self.bounds.allows(value):
            raise ConfigError(f"{self.env} must be {self.bounds.words()}")


# -- generated development secrets ----------------------------------------------------------------------

def _new_jwt_secret() -> str:
    return secrets.token_urlsafe(48)


def _new_message_key() -> str:
    return "dev1:" + _b64url(secrets.token_bytes(32))


def _new_vapid_key() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    number = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return _b64url(number.to_bytes(32, "big"))


def _pool_size_default(environ: Mapping[str, str]) -> int:
    """The embedded server answers more commands per second through few connections."""
    return 100 if _given(environ, "MONGODB_URI") else 8


# -- the configuration ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Everything careline reads from its environment; built once by `Config.from_env`."""

    env: str = "development"
    host: str = "0.0.0.0"
    port: int = 8080
    worker_port: int = 9108
    mongodb_uri: str | None = None
    mongodb_db: str = "careline"
    mongodb_pool_size: int = 100
    mongodb_write_concern: str = "majority"
    dependency_timeout_ms: int = 2000
    redis_url: str | None = None
    redis_prefix: str = "careline:"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_seconds: int = 86_400
    cors_origins: tuple[str, ...] = ()
    auth_cookie_name: str | None = None
    csrf_cookie_name: str = "careline_csrf"
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    log_format: str = "text"
    max_payload_bytes: int = 64 * 1024
    connection_rate_per_second: float = 100.0
    connection_rate_burst: int = 200
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    connect_timeout: float = 45.0
    socket_backlog_max_bytes: int = 16 * 1024 * 1024
    rate_limit_burst: int = 30
    rate_limit_per_second: float = 10.0
    run_worker_in_web: bool = True
    booking_tick_seconds: float = 5.0
    booking_lease_seconds: float = 60.0
    worksheet_tick_seconds: float = 10.0
    worksheet_lease_seconds: float = 60.0
    worksheet_compact_every: int = 200
    worksheet_compact_idle_seconds: float = 30.0
    worksheet_documents_held: int = 2000
    worksheet_write_interval_ms: float = 2.0
    message_keys: tuple[tuple[str, bytes], ...] = ()
    chat_client_to_client: bool = True
    chat_edit_window_minutes: int = 15
    chat_activity_flush_seconds: float = 1.0
    chat_write_interval_ms: float = 3.0
    chat_blocklist_file: Path | None = None
    chat_crisis_phrases_file: Path | None = None
    chat_safety_resources: str = (
        "If you are in danger or thinking about harming yourself, call your local emergency number "
        "or a crisis line now. You are not alone."
    )
    chat_group_max_members: int = 49
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_quota_bytes_per_hour: int = 200 * 1024 * 1024
    upload_quota_files_per_hour: int = 120
    upload_orphan_hours: float = 24.0
    upload_link_seconds: int = 300
    vapid_private_key: str | None = None
    vapid_subject: str = "mailto:admin@careline.invalid"
    push_concurrency: int = 20
    push_release_interval: float = 30.0
    push_retry_base: float = 1.0
    smtp_url: str | None = None
    email_from: str = "careline <no-reply@careline.invalid>"
    public_url: str = "http://localhost:8080"
    app_url: str = "http://localhost:3000"
    email_digest_minutes: float = 15.0
    email_max_tries: int = 5
    email_retry_base_seconds: float = 30.0
    email_tick_seconds: float = 5.0
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_product: str | None = None
    stripe_plan_cache_seconds: float = 60.0
    billing_webhook_retry_seconds: float = 5.0
    platform_commission_rate: float = 0.10
    ice_servers: tuple[str, ...] = ("stun:stun.l.google.com:19302",)
    jitsi_domain: str | None = None
    jitsi_app_id: str | None = None
    jitsi_secret: str | None = None
    turn_secret: str | None = None
    turn_ttl_seconds: int = 3600
    meeting_join_early_minutes: int = 15
    meeting_grace_minutes: int = 15
    meeting_auto_admit_booked: bool = False
    meeting_reconnect_seconds: float = 20.0
    meeting_no_show_minutes: int = 15
    meeting_tick_seconds: float = 5.0
    meeting_lease_seconds: float = 60.0
    meeting_seat_hold_ms: float = 1000.0
    notices: tuple[str, ...] = field(default=(), compare=False)

    @property
    def production(self) -> bool:
        """True when running with CARELINE_ENV=production."""
        return self.env == "production"

    @property
    def allowed_origins(self) -> str | list[str]:
        """Browser origins for REST and Socket.IO: CORS_ORIGINS, else any in development and none in production."""
        if self.cors_origins:
            return list(self.cors_origins)
        return [] if self.production else "*"

    @property
    def embedded_mongo(self) -> bool:
        """True when careline starts its own SecantusDB child process."""
        return not self.mongodb_uri

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the configuration from environment variables (os.environ by default)."""
        env = dict(os.environ if environ is None else environ)
        notices: list[str] = []
        if _read(SETTING["CARELINE_ENV"], env) == "production":
            _check_production(env)
        else:
            env.update(_dev_secrets(_read(SETTING["DATA_DIR"], env), env, notices))
        config = cls(**{setting.field: _read(setting, env) for setting in SETTINGS}, notices=tuple(notices))
        config.validate()
        return config

    def validate(self) -> None:
        """Refuse combinations that cannot work, with a one-line reason."""
        for setting in SETTINGS:
            setting.check(getattr(self, setting.field))
        if not (self.jwt_secret or self.jwt_public_key):
            raise ConfigError("JWT_SECRET or JWT_PUBLIC_KEY must be set")
        if not self.message_keys:
            raise ConfigError("MESSAGE_KEYS must hold at least one key")
        if self.auth_cookie_name and not self.cors_origins:
            raise ConfigError("AUTH_COOKIE_NAME needs CORS_ORIGINS: cookie sessions come only from listed origins")


_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Config)}

_S = Setting
_POSITIVE = Bounds(above=0)
_COUNT = Bounds(at_least=1)

# environment name, Config field, kind, meaning; then default, README default, bounds/choices, production, status.
SETTINGS: tuple[Setting, ...] = (
    _S("CARELINE_ENV", "env", LOWER, "`production` refuses generated secrets and the embedded database",
       choices=("development", "production")),
    _S("HOST", "host", TEXT, "address the web server listens on"),
    _S("PORT", "port", INTEGER, "port the web server listens on", bounds=Bounds(0, 65535)),
    _S("WORKER_PORT", "worker_port", INTEGER, "port `python server.py worker` serves /health, /ready and /metrics "
       "on (its jobs' counters), 0 for none", bounds=Bounds(0, 65535)),
    _S("MONGODB_URI", "mongodb_uri", TEXT, "MongoDB connection string (PyMongo `AsyncMongoClient`)",
       shown="unset: embedded SecantusDB", production=Required(reason="refuses the embedded database")),
    _S("MONGODB_DB", "mongodb_db", TEXT, "database name"),
    _S("MONGODB_POOL_SIZE", "mongodb_pool_size", INTEGER, "most connections to MongoDB per process",
       default=_pool_size_default, shown="`100`, or `8` on the embedded database", bounds=_COUNT),
    _S("MONGODB_WRITE_CONCERN", "mongodb_write_concern", LOWER,
       "what an `ok` ack waits for: `majority` of the replica set, journaled; `1` only the primary's journal "
       "(faster, but a write acknowledged just before a failover can be rolled back)", choices=("majority", "1")),
    _S("DEPENDENCY_TIMEOUT_MS", "dependency_timeout_ms", INTEGER,
       "longest a request waits on one MongoDB or Redis operation before it answers `unavailable`",
       bounds=Bounds(100, 60000)),
    _S("REDIS_URL", "redis_url", TEXT, "Redis for the Socket.IO manager, shared rate limits and presence",
       shown="unset: single process"),
    _S("REDIS_PREFIX", "redis_prefix", TEXT, "prefix of every Redis key and of the Socket.IO channel"),
    _S("JWT_SECRET", "jwt_secret", TEXT, "HS256 key for client tokens",
       production=Required(("JWT_PUBLIC_KEY",), generate=_new_jwt_secret, what="JWT signing secret")),
    _S("JWT_PUBLIC_KEY", "jwt_public_key", TEXT, "PEM RS256 public key (instead of `JWT_SECRET`)"),
    _S("JWT_PRIVATE_KEY", "jwt_private_key", TEXT, "PEM RS256 private key, only for `server.py token`"),
    _S("JWT_AUDIENCE", "jwt_audience", TEXT, "token audience, checked when set"),
    _S("JWT_ISSUER", "jwt_issuer", TEXT, "token issuer, checked when set"),
    _S("JWT_MAX_LIFETIME_SECONDS", "jwt_max_lifetime_seconds", INTEGER,
       "tokens whose `exp` is further ahead than this are refused", bounds=_COUNT),
    _S("CORS_ORIGINS", "cors_origins", LIST, "browser origins for REST and Socket.IO",
       shown="any origin in development, none in production"),
    _S("AUTH_COOKIE_NAME", "auth_cookie_name", TEXT, "httpOnly cookie holding the JWT for browsers (unset: cookie "
       "auth off); with it, CORS_ORIGINS is required and checked on every cookie request (docs/security.md)"),
    _S("CSRF_COOKIE_NAME", "csrf_cookie_name", TEXT, "readable cookie whose value state-changing REST requests "
       "with cookie auth repeat in `X-CSRF-Token` (double submit)"),
    _S("DATA_DIR", "data_dir", PATH, "embedded database files, development secrets", shown="`./data`"),
    _S("LOG_LEVEL", "log_level", UPPER, "least severity logged",
       choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    _S("LOG_FORMAT", "log_format", LOWER, "`text` (`key=value`) or `json` (one object per line)",
       choices=("text", "json")),
    _S("MAX_PAYLOAD_BYTES", "max_payload_bytes", INTEGER,
       "largest request payload; larger gets `invalid_payload`", bounds=_COUNT),
    _S("CONNECTION_RATE_PER_SECOND", "connection_rate_per_second", NUMBER,
       "packets one connection may send per second, whatever they are (refused with `rate_limited` above it; "
       "1,000 refusals within 10 s close the connection)", bounds=_POSITIVE),
    _S("CONNECTION_RATE_BURST", "connection_rate_burst", INTEGER,
       "packets one connection may send at once before CONNECTION_RATE_PER_SECOND applies", bounds=_COUNT),
    _S("PING_INTERVAL_SECONDS", "ping_interval", NUMBER, "Engine.IO heartbeat interval", bounds=_POSITIVE),
    _S("PING_TIMEOUT_SECONDS", "ping_timeout", NUMBER, "Engine.IO heartbeat timeout", bounds=_POSITIVE),
    _S("CONNECT_TIMEOUT_SECONDS", "connect_timeout", NUMBER,
       "an Engine.IO session that joins no namespace within this time is closed", bounds=_POSITIVE),
    _S("SOCKET_BACKLOG_MAX_BYTES", "socket_backlog_max_bytes", INTEGER,
       "output a WebSocket client may fall behind (it stopped reading) before its connection is dropped; "
       "it reconnects and catches up from history", bounds=Bounds(at_least=64 * 1024)),
    _S("RATE_LIMIT_BURST", "rate_limit_burst", INTEGER,
       "default token bucket size per user and event (some events set their own)", bounds=_COUNT),
    _S("RATE_LIMIT_PER_SECOND", "rate_limit_per_second", NUMBER,
       "default token bucket refill per user and event (some events set their own)", bounds=_POSITIVE),
    _S("RUN_WORKER_IN_WEB", "run_worker_in_web", FLAG, "run background jobs (reminders, push retries) inside "
       "each web process; jobs are safe to run in many processes"),
    _S("BOOKING_TICK_SECONDS", "booking_tick_seconds", NUMBER,
       "how often the booking scheduler runs (auto-decline, reminders, claim repair)", bounds=_POSITIVE),
    _S("BOOKING_LEASE_SECONDS", "booking_lease_seconds", NUMBER,
       "how long a scheduler loop holds a claimed reminder before another may take it", bounds=_POSITIVE),
    _S("WORKSHEET_TICK_SECONDS", "worksheet_tick_seconds", NUMBER,
       "how often the worksheet scheduler runs (due-soon and overdue reminders, idle compaction)",
       bounds=_POSITIVE),
    _S("WORKSHEET_LEASE_SECONDS", "worksheet_lease_seconds", NUMBER,
       "how long a scheduler loop holds a claimed worksheet reminder before another may take it",
       bounds=_POSITIVE),
    _S("WORKSHEET_COMPACT_EVERY", "worksheet_compact_every", INTEGER,
       "updates a process appends to a worksheet document's log before it compacts it into a snapshot",
       bounds=_COUNT),
    _S("WORKSHEET_COMPACT_IDLE_SECONDS", "worksheet_compact_idle_seconds", NUMBER,
       "age of the oldest logged update of a document the scheduler compacts on idle", bounds=_POSITIVE),
    _S("WORKSHEET_DOCUMENTS_HELD", "worksheet_documents_held", INTEGER,
       "worksheet documents one process keeps in memory (least recently used reload from the store)",
       bounds=_COUNT),
    _S("WORKSHEET_WRITE_INTERVAL_MS", "worksheet_write_interval_ms", NUMBER,
       "least time between two batched update-log inserts (as CHAT_WRITE_INTERVAL_MS)", bounds=Bounds(0, 100)),
    _S("MESSAGE_KEYS", "message_keys", KEYS, "AES-256 keys for text at rest, newest first",
       production=Required(generate=_new_message_key, what="message encryption key")),
    _S("CHAT_CLIENT_TO_CLIENT", "chat_client_to_client", FLAG, "allow client-client conversations"),
    _S("CHAT_EDIT_WINDOW_MINUTES", "chat_edit_window_minutes", INTEGER, "how long a sender may edit a message",
       bounds=Bounds(at_least=0)),
    _S("CHAT_WRITE_INTERVAL_MS", "chat_write_interval_ms", NUMBER,
       "least time between two batched message inserts; under steady load a batch then carries several "
       "messages, a message after a quiet spell is written at once", bounds=Bounds(0, 100)),
    _S("CHAT_ACTIVITY_FLUSH_SECONDS", "chat_activity_flush_seconds", NUMBER,
       "how often a process writes conversation activity (last seq and activity time, the sender's read "
       "position) behind its messages; other processes see it this much later", bounds=_POSITIVE),
    _S("CHAT_BLOCKLIST_FILE", "chat_blocklist_file", PATH,
       "file of regular expressions (one a line) that reject a message"),
    _S("CHAT_CRISIS_PHRASES_FILE", "chat_crisis_phrases_file", PATH,
       "file of phrases (one a line) that raise a safety alert"),
    _S("CHAT_SAFETY_RESOURCES", "chat_safety_resources", TEXT,
       "returned to a sender whose message matched a crisis phrase", shown="a short crisis text"),
    _S("CHAT_GROUP_MAX_MEMBERS", "chat_group_max_members", INTEGER,
       "members besides its creator a group conversation may be opened with",
       bounds=Bounds(at_least=2, at_most=10_000)),
    _S("UPLOAD_MAX_BYTES", "upload_max_bytes", INTEGER, "largest upload", bounds=_COUNT),
    _S("UPLOAD_QUOTA_BYTES_PER_HOUR", "upload_quota_bytes_per_hour", INTEGER,
       "bytes one user may upload per rolling hour (over it: 429 `rate_limited`)", bounds=_COUNT),
    _S("UPLOAD_QUOTA_FILES_PER_HOUR", "upload_quota_files_per_hour", INTEGER,
       "files one user may upload per rolling hour", bounds=_COUNT),
    _S("UPLOAD_ORPHAN_HOURS", "upload_orphan_hours", NUMBER,
       "uploads never sent in a message are deleted after this many hours", bounds=_POSITIVE),
    _S("UPLOAD_LINK_SECONDS", "upload_link_seconds", INTEGER,
       "lifetime of a signed download link (`upload:link`)", bounds=Bounds(at_least=1, at_most=300)),
    _S("VAPID_PRIVATE_KEY", "vapid_private_key", TEXT, "Web Push key, raw P-256 scalar or DER, base64url",
       production=Required(generate=_new_vapid_key, what="Web Push VAPID key")),
    _S("VAPID_SUBJECT", "vapid_subject", TEXT, "Web Push contact"),
    _S("PUSH_CONCURRENCY", "push_concurrency", INTEGER, "Web Push sends running at once per process",
       bounds=_COUNT),
    _S("PUSH_RELEASE_INTERVAL_SECONDS", "push_release_interval", NUMBER,
       "how often pushes held for quiet hours are checked", bounds=_POSITIVE),
    _S("PUSH_RETRY_BASE_SECONDS", "push_retry_base", NUMBER,
       "first Web Push retry delay (doubles per try, 5 tries; `Retry-After` wins)", bounds=_POSITIVE),
    _S("SMTP_URL", "smtp_url", TEXT, "`smtp://user:pass@host:port` for email notifications (STARTTLS when the "
       "server offers it); unset, no email is sent"),
    _S("EMAIL_FROM", "email_from", TEXT, "the From of notification emails"),
    _S("PUBLIC_URL", "public_url", TEXT, "where this server is reached from outside (unsubscribe links)"),
    _S("APP_URL", "app_url", TEXT, "the platform's web app (the link in every email)"),
    _S("EMAIL_DIGEST_MINUTES", "email_digest_minutes", NUMBER,
       "at most one email per user and category this often; what arrives meanwhile is combined", bounds=_POSITIVE),
    _S("EMAIL_MAX_TRIES", "email_max_tries", INTEGER, "SMTP attempts before an email is given up", bounds=_COUNT),
    _S("EMAIL_RETRY_BASE_SECONDS", "email_retry_base_seconds", NUMBER,
       "first retry delay of an email the SMTP server refused for now (doubles per try)", bounds=_POSITIVE),
    _S("EMAIL_TICK_SECONDS", "email_tick_seconds", NUMBER, "how often the email queue is worked", bounds=_POSITIVE),
    _S("STRIPE_API_KEY", "stripe_api_key", TEXT,
       "Stripe secret key; unset, every /billing request answers `unavailable` and the webhook route 503"),
    _S("STRIPE_WEBHOOK_SECRET", "stripe_webhook_secret", TEXT,
       "Stripe webhook signing secret (`whsec_...`); unset, the webhook route answers 503"),
    _S("STRIPE_API_BASE", "stripe_api_base", TEXT, "another Stripe API base (localstripe in tests)",
       shown="Stripe's API"),
    _S("STRIPE_PRODUCT", "stripe_product", TEXT, "the Stripe product whose active plans `plan:list` offers",
       shown="every active plan"),
    _S("STRIPE_PLAN_CACHE_SECONDS", "stripe_plan_cache_seconds", NUMBER, "how long `plan:list` reuses Stripe's answer",
       bounds=Bounds(at_least=0)),
    _S("BILLING_WEBHOOK_RETRY_SECONDS", "billing_webhook_retry_seconds", NUMBER,
       "how often stored webhook events that failed to apply are retried (each waits twice as long, up to 10 min)",
       bounds=_POSITIVE),
    _S("PLATFORM_COMMISSION_RATE", "platform_commission_rate", NUMBER,
       "platform share of a session's price (tips excluded), rounded half-up to the minor unit",
       bounds=Bounds(at_least=0, below=1)),
    _S("ICE_SERVERS", "ice_servers", LIST, "STUN/TURN URLs for meetings (`turn:`/`turns:` ones get "
       "short-lived credentials when `TURN_SECRET` is set)", shown="a public STUN server"),
    _S("TURN_SECRET", "turn_secret", TEXT, "coturn `static-auth-secret`: signs TURN credentials "
       "(TURN REST scheme) handed out with `meeting:join`"),
    _S("TURN_TTL_SECONDS", "turn_ttl_seconds", INTEGER, "lifetime of TURN credentials (never beyond the "
       "meeting's end + grace)", bounds=_COUNT),
    _S("JITSI_DOMAIN", "jitsi_domain", TEXT, "Jitsi server for meeting rooms (with the app id and secret, "
       "`meeting:join` answers a Jitsi room token)"),
    _S("JITSI_APP_ID", "jitsi_app_id", TEXT, "Jitsi app id for room tokens (`iss`)"),
    _S("JITSI_SECRET", "jitsi_secret", TEXT, "Jitsi secret for room tokens (HS256)"),
    _S("MEETING_JOIN_EARLY_MINUTES", "meeting_join_early_minutes", INTEGER,
       "how long before its start a meeting can be joined", bounds=Bounds(at_least=0)),
    _S("MEETING_GRACE_MINUTES", "meeting_grace_minutes", INTEGER,
       "how long after its end a meeting can still be joined; live meetings end then", bounds=Bounds(at_least=0)),
    _S("MEETING_AUTO_ADMIT_BOOKED", "meeting_auto_admit_booked", FLAG,
       "admit the booked client of a booking's meeting without the lobby"),
    _S("MEETING_RECONNECT_SECONDS", "meeting_reconnect_seconds", NUMBER,
       "how long a participant whose sockets all dropped keeps their seat", bounds=_POSITIVE),
    _S("MEETING_NO_SHOW_MINUTES", "meeting_no_show_minutes", INTEGER,
       "minutes after start when an absent client is a no-show (or an absent host cancels)", bounds=_COUNT),
    _S("MEETING_TICK_SECONDS", "meeting_tick_seconds", NUMBER,
       "how often the meeting scheduler runs (outcomes, auto-end, seats given up)", bounds=_POSITIVE),
    _S("MEETING_LEASE_SECONDS", "meeting_lease_seconds", NUMBER,
       "how long a scheduler loop holds a meeting it is deciding before another may take it", bounds=_POSITIVE),
    _S("MEETING_SEAT_HOLD_MS", "meeting_seat_hold_ms", NUMBER,
       "how long a process trusts an admitted seat it read from the shared mirror for `signal` (a kick, leave "
       "or end is told to every process, which drop the seat and answer; only a process that does not answer "
       "is waited out this long; 0: read the mirror on every signal)",
       bounds=Bounds(at_least=0, at_most=5000)),
)
SETTING: dict[str, Setting] = {setting.env: setting for setting in SETTINGS}


# -- reading --------------------------------------------------------------------------------------------

def _given(environ: Mapping[str, str], name: str) -> bool:
    return bool(environ.get(name, "").strip())


def _read(setting: Setting, environ: Mapping[str, str]) -> Any:
    """One setting's value: parsed when given (empty counts as unset), else its default; then checked."""
    if not _given(environ, setting.env):
        return setting.default_for(environ)
    try:
        value = setting.kind.parse(environ[setting.env])
    except _BadValue as exc:
        raise ConfigError(f"{setting.env} {exc}") from None
    setting.check(value)
    return value


def _check_production(environ: Mapping[str, str]) -> None:
    """In production every secret and every store must be given explicitly."""
    for setting in SETTINGS:
        if setting.production:
            setting.production.check(setting.env, environ)


def _missing_secrets(environ: Mapping[str, str]) -> list[Setting]:
    """The generated-in-development secrets the environment gives neither directly nor by an alternative."""
    return [s for s in SETTINGS if s.production and s.production.generate
            and not any(_given(environ, name) for name in (s.env, *s.production.alternatives))]


def _stored_secrets(path: Path, wanted: list[Setting]) -> dict[str, str]:
    """The secrets file's contents, after generating (once, mode 600) any wanted secret it lacks."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    created = [s for s in wanted if s.env not in stored]
    for setting in created:
        assert setting.production and setting.production.generate
        stored[setting.env] = setting.production.generate()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return stored


def _dev_secrets(data_dir: Path, environ: Mapping[str, str], notices: list[str]) -> dict[str, str]:
    """Load (or create once) the development secrets file for every secret the environment lacks."""
    missing = _missing_secrets(environ)
    if not missing:
        return {}
    path = data_dir / "dev-secrets.json"
    stored = _stored_secrets(path, missing)
    what = ", ".join(s.production.what for s in missing if s.production)
    notices.append(f"development mode: using generated {what} from {path} (set them in production)")
    return {s.env: stored[s.env] for s in missing}


# -- README ---------------------------------------------------------------------------------------------

README_START = "<!-- config:start -->"
README_END = "<!-- config:end -->"


def _default_text(setting: Setting) -> str:
    """The README's default column."""
    if setting.shown:
        return setting.shown
    if setting.production and setting.production.generate:
        return "generated in development"
    value = setting.default_for({})
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{_num(value) if isinstance(value, float) else value}`"


def _allowed_text(setting: Setting) -> str:
    """The README's allowed-values column."""
    if setting.choices:
        return ", ".join(f"`{choice}`" for choice in setting.choices)
    return f"{setting.kind.name}, {setting.bounds.words()}" if setting.bounds else setting.kind.name


def _table(settings: list[Setting]) -> list[str]:
    rows = ["| variable | default | allowed | production | meaning |", "|---|---|---|---|---|"]
    for s in settings:
        production = s.production.describe() if s.production else ""
        rows.append(f"| `{s.env}` | {_default_text(s)} | {_allowed_text(s)} | {production} | {s.meaning} |")
    return rows


def markdown() -> str:
    """The README's configuration tables, generated from SETTINGS."""
    later = [s for s in SETTINGS if s.status == NOT_YET_READ]
    lines = _table([s for s in SETTINGS if s.status == READ])
    lines += ["", "### Settings of features not yet built", "",
              "Parsed and checked, but nothing reads them yet; they are kept for the features that will.", ""]
    return "\n".join(lines + _table(later)) + "\n"


def with_readme_section(readme: str, section: str) -> str:
    """README text with everything between the config markers replaced by `section`."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not (start and end):
        raise ConfigError(f"README.md lacks the markers {README_START!r} and {README_END!r}")
    return f"{head}{README_START}\n\n{section}\n{README_END}{tail}"


def _main(argv: list[str]) -> int:
    """`python -m config --markdown` prints the tables; `--write-readme` rewrites README.md's section."""
    if argv == ["--markdown"]:
        sys.stdout.write(markdown())
        return 0
    if argv == ["--write-readme"]:
        readme = Path(__file__).with_name("README.md")
        readme.write_text(with_readme_section(readme.read_text(), markdown()))
        return 0
    print("usage: python -m config --markdown | --write-readme", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
