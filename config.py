"""careline configuration: one frozen Config read from the environment, and the app's typed keys."""
from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class ConfigError(Exception):
    """The environment does not describe a server that may start."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_message_keys(text: str) -> tuple[tuple[str, bytes], ...]:
    """Parse MESSAGE_KEYS: comma-separated `keyId:base64url(32 bytes)`, newest first."""
    keys = []
    for item in _csv(text):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise ConfigError("MESSAGE_KEYS must be a comma-separated list of keyId:base64url-key")
        key = b64url_decode(encoded)
        if len(key) != 32:
            raise ConfigError(f"MESSAGE_KEYS key {kid!r} must decode to 32 bytes (AES-256)")
        keys.append((kid, key))
    return tuple(keys)


def _new_vapid_key() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    number = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return _b64url(number.to_bytes(32, "big"))


# name -> (generator, what it is); generated once in development and kept under DATA_DIR.
_DEV_SECRETS = {
    "JWT_SECRET": (lambda: secrets.token_urlsafe(48), "JWT signing secret"),
    "MESSAGE_KEYS": (lambda: "dev1:" + _b64url(secrets.token_bytes(32)), "message encryption key"),
    "VAPID_PRIVATE_KEY": (_new_vapid_key, "Web Push VAPID key"),
}


def _dev_secrets(data_dir: Path, environ: Mapping[str, str], notices: list[str]) -> dict[str, str]:
    """Load (or create once) the development secrets file for every secret the environment lacks."""
    missing = [name for name in _DEV_SECRETS if not environ.get(name)]
    if "JWT_SECRET" in missing and environ.get("JWT_PUBLIC_KEY"):
        missing.remove("JWT_SECRET")
    if not missing:
        return {}
    path = data_dir / "dev-secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    created = [name for name in missing if name not in stored]
    for name in created:
        stored[name] = _DEV_SECRETS[name][0]()
    if created:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    what = ", ".join(_DEV_SECRETS[name][1] for name in missing)
    notices.append(f"development mode: using generated {what} from {path} (set them in production)")
    return {name: stored[name] for name in missing}


@dataclass(frozen=True)
class Config:
    """Everything careline reads from its environment; built once by `Config.from_env`."""

    env: str = "development"
    host: str = "0.0.0.0"
    port: int = 8080
    mongodb_uri: str | None = None
    mongodb_db: str = "careline"
    mongodb_pool_size: int = 100
    redis_url: str | None = None
    redis_prefix: str = "careline:"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    cors_origins: tuple[str, ...] = ()
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    log_format: str = "text"
    max_payload_bytes: int = 64 * 1024
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    connect_timeout: float = 45.0
    socket_backlog_max_bytes: int = 16 * 1024 * 1024
    rate_limit_burst: int = 30
    rate_limit_per_second: float = 10.0
    run_worker_in_web: bool = True
    booking_tick_seconds: float = 5.0
    booking_lease_seconds: float = 60.0
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
    upload_max_bytes: int = 10 * 1024 * 1024
    vapid_private_key: str | None = None
    vapid_subject: str = "mailto:admin@careline.invalid"
    push_concurrency: int = 20
    push_release_interval: float = 30.0
    push_retry_base: float = 1.0
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    platform_commission_rate: float = 0.10
    ice_servers: tuple[str, ...] = ("stun:stun.l.google.com:19302",)
    jitsi_domain: str | None = None
    jitsi_app_id: str | None = None
    jitsi_secret: str | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)

    @property
    def production(self) -> bool:
        """True when running with CARELINE_ENV=production."""
        return self.env == "production"

    @property
    def embedded_mongo(self) -> bool:
        """True when careline starts its own SecantusDB child process."""
        return not self.mongodb_uri

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the configuration from environment variables (os.environ by default)."""
        env = dict(os.environ if environ is None else environ)
        mode = env.get("CARELINE_ENV", "development").strip().lower() or "development"
        if mode not in {"development", "production"}:
            raise ConfigError("CARELINE_ENV must be 'development' or 'production'")
        data_dir = Path(env.get("DATA_DIR") or "data")
        notices: list[str] = []
        if mode == "production":
            _check_production(env)
        else:
            env.update(_dev_secrets(data_dir, env, notices))
        values: dict[str, Any] = dict(
            env=mode,
            host=env.get("HOST") or "0.0.0.0",
            port=int(env.get("PORT") or 8080),
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongodb_db=env.get("MONGODB_DB") or "careline",
            # The embedded server answers more commands per second through few connections.
            mongodb_pool_size=int(env.get("MONGODB_POOL_SIZE") or (100 if env.get("MONGODB_URI") else 8)),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("REDIS_PREFIX") or "careline:",
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_public_key=env.get("JWT_PUBLIC_KEY") or None,
            jwt_private_key=env.get("JWT_PRIVATE_KEY") or None,
            jwt_audience=env.get("JWT_AUDIENCE") or None,
            jwt_issuer=env.get("JWT_ISSUER") or None,
            cors_origins=_csv(env.get("CORS_ORIGINS")),
            data_dir=data_dir,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            log_format=(env.get("LOG_FORMAT") or "text").lower(),
            max_payload_bytes=int(env.get("MAX_PAYLOAD_BYTES") or 64 * 1024),
            ping_interval=float(env.get("PING_INTERVAL_SECONDS") or 25),
            ping_timeout=float(env.get("PING_TIMEOUT_SECONDS") or 20),
            connect_timeout=float(env.get("CONNECT_TIMEOUT_SECONDS") or 45),
            socket_backlog_max_bytes=int(env.get("SOCKET_BACKLOG_MAX_BYTES") or 16 * 1024 * 1024),
            rate_limit_burst=int(env.get("RATE_LIMIT_BURST") or 30),
            rate_limit_per_second=float(env.get("RATE_LIMIT_PER_SECOND") or 10),
            run_worker_in_web=_bool(env.get("RUN_WORKER_IN_WEB"), True),
            booking_tick_seconds=float(env.get("BOOKING_TICK_SECONDS") or 5),
            booking_lease_seconds=float(env.get("BOOKING_LEASE_SECONDS") or 60),
            message_keys=parse_message_keys(env.get("MESSAGE_KEYS", "")),
            chat_client_to_client=_bool(env.get("CHAT_CLIENT_TO_CLIENT"), True),
            chat_edit_window_minutes=int(env.get("CHAT_EDIT_WINDOW_MINUTES") or 15),
            chat_activity_flush_seconds=float(env.get("CHAT_ACTIVITY_FLUSH_SECONDS") or 1.0),
            chat_write_interval_ms=float(env.get("CHAT_WRITE_INTERVAL_MS") or 3.0),
            chat_blocklist_file=Path(env["CHAT_BLOCKLIST_FILE"]) if env.get("CHAT_BLOCKLIST_FILE") else None,
            chat_crisis_phrases_file=(
                Path(env["CHAT_CRISIS_PHRASES_FILE"]) if env.get("CHAT_CRISIS_PHRASES_FILE") else None
            ),
            upload_max_bytes=int(env.get("UPLOAD_MAX_BYTES") or 10 * 1024 * 1024),
            vapid_private_key=env.get("VAPID_PRIVATE_KEY") or None,
            vapid_subject=env.get("VAPID_SUBJECT") or "mailto:admin@careline.invalid",
            push_concurrency=int(env.get("PUSH_CONCURRENCY") or 20),
            push_release_interval=float(env.get("PUSH_RELEASE_INTERVAL_SECONDS") or 30),
            push_retry_base=float(env.get("PUSH_RETRY_BASE_SECONDS") or 1),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            platform_commission_rate=float(env.get("PLATFORM_COMMISSION_RATE") or 0.10),
            jitsi_domain=env.get("JITSI_DOMAIN") or None,
            jitsi_app_id=env.get("JITSI_APP_ID") or None,
            jitsi_secret=env.get("JITSI_SECRET") or None,
            notices=tuple(notices),
        )
        if env.get("ICE_SERVERS"):
            values["ice_servers"] = _csv(env["ICE_SERVERS"])
        if env.get("CHAT_SAFETY_RESOURCES"):
            values["chat_safety_resources"] = env["CHAT_SAFETY_RESOURCES"]
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Refuse combinations that cannot work, with a one-line reason."""
        if self.log_format not in {"text", "json"}:
            raise ConfigError("LOG_FORMAT must be 'text' or 'json'")
        if not (self.jwt_secret or self.jwt_public_key):
            raise ConfigError("JWT_SECRET or JWT_PUBLIC_KEY must be set")
        if not self.message_keys:
            raise ConfigError("MESSAGE_KEYS must hold at least one key")
        if not 0 <= self.platform_commission_rate < 1:
            raise ConfigError("PLATFORM_COMMISSION_RATE must be between 0 and 1")
        if self.socket_backlog_max_bytes < 64 * 1024:
            raise ConfigError("SOCKET_BACKLOG_MAX_BYTES must be at least 65536")
        if not 0 <= self.chat_write_interval_ms <= 100:
            raise ConfigError("CHAT_WRITE_INTERVAL_MS must be between 0 and 100")


def _check_production(env: Mapping[str, str]) -> None:
    """In production every secret and every store must be given explicitly."""
    if not env.get("MONGODB_URI"):
        raise ConfigError("production mode refuses the embedded database: set MONGODB_URI")
    if not (env.get("JWT_SECRET") or env.get("JWT_PUBLIC_KEY")):
        raise ConfigError("production mode needs JWT_SECRET or JWT_PUBLIC_KEY")
    for name in ("MESSAGE_KEYS", "VAPID_PRIVATE_KEY"):
        if not env.get(name):
            raise ConfigError(f"production mode needs {name}")
