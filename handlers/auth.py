"""JWT verification (and minting, for development tokens)."""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from config import Config
from errors import TokenExpired, Unauthorized

ROLES = ("client", "therapist", "admin")
EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[^@\s<>\"',;]{1,190}\.[A-Za-z]{2,24}")


@dataclass(frozen=True)
class User:
    """The authenticated caller, as the token describes them."""

    id: str
    role: str
    name: str | None = None
    email: str | None = None  # the token's `email` claim: where email notifications go

    @property
    def is_admin(self) -> bool:
        """True for platform administrators."""
        return self.role == "admin"

    @property
    def is_therapist(self) -> bool:
        """True for therapists."""
        return self.role == "therapist"

    def to_dict(self) -> dict[str, Any]:
        """The user as the client sees it."""
        return {"id": self.id, "role": self.role, "name": self.name}


@dataclass(frozen=True)
class Identity:
    """A verified token: who, and until when."""

    user: User
    expires_at: float


#: registered claims that must be NumericDate values (RFC 7519 §2), not numeric strings
TIME_CLAIMS = ("exp", "iat", "nbf")
#: verified tokens remembered (most recent first out last): a client's namespaces connect with one token
VERIFIED_CACHE_SIZE = 2048


class PreparedHMAC(HMACAlgorithm):
    """HS256 whose key checks (not a PEM, SSH, DER or JWK shape, long enough) run once per key, not per token:
    PyJWT prepares the key on every decode (~a quarter of verifying a token)."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: tuple[Any, bytes] | None = None

    def prepare_key(self, key: str | bytes) -> bytes:
        """The key as PyJWT prepares it, remembered for the last key seen."""
        prepared = self._prepared
        if prepared is None or prepared[0] != key:
            prepared = self._prepared = (key, super().prepare_key(key))
        return prepared[1]


def _decoder() -> jwt.PyJWT:
    """A PyJWT decoder of its own whose HS256 prepares the key once (every other check is PyJWT's)."""
    decoder = jwt.PyJWT()
    decoder._jws.unregister_algorithm("HS256")
    decoder._jws.register_algorithm("HS256", PreparedHMAC())
    return decoder


class Authenticator:
    """Verifies bearer tokens against the configured key, audience and issuer."""

    def __init__(self, config: Config) -> None:
        self._config = config
        # token -> what it verified to; a hit is re-checked against the clock, so it never outlives its `exp`
        self._verified: OrderedDict[str, Identity] = OrderedDict()
        self._jwt = _decoder()
        if config.jwt_public_key:
            self._key: Any = config.jwt_public_key
            self._algorithms = ["RS256"]
        else:
            self._key = config.jwt_secret
            self._algorithms = ["HS256"]

    def verify(self, token: Any) -> Identity:
        """Return the identity in `token` or raise Unauthorized / TokenExpired."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("A token is required")
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= time.time():  # PyJWT's rule (no leeway): expired at `exp`
                del self._verified[token]
                raise TokenExpired("The token has expired")
            self._verified.move_to_end(token)
            return known
        identity = self._decode(token)
        self._verified[token] = identity
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    def _decode(self, token: str) -> Identity:
        """Check the signature and claims of a token not seen before."""
        try:
            claims = self._jwt.decode(
                token, self._key, algorithms=self._algorithms, audience=self._config.jwt_audience,
                issuer=self._config.jwt_issuer,
                options={"require": ["exp", "sub"], "verify_aud": self._config.jwt_audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("The token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("The token is not valid") from None
        if any(key in claims and not _is_number(claims[key]) for key in TIME_CLAIMS):
            raise Unauthorized("The token's times are not numbers")
        expires_at = float(claims["exp"])
        if expires_at - time.time() > self._config.jwt_max_lifetime_seconds:
            raise Unauthorized("The token lives longer than this server accepts")
        return Identity(user=_user_from(claims), expires_at=expires_at)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _user_from(claims: dict[str, Any]) -> User:
    sub, role, name = claims.get("sub"), claims.get("role"), claims.get("name")
    if not isinstance(sub, str) or not 0 < len(sub) <= 128:
        raise Unauthorized("The token's subject is not valid")
    if role not in ROLES:
        raise Unauthorized("The token's role is not valid")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise Unauthorized("The token's name is not valid")
    email = claims.get("email")
    if email is not None and not (isinstance(email, str) and EMAIL.fullmatch(email)):
        email = None  # a claim careline cannot use is ignored, not refused: email is optional
    return User(id=sub, role=role, name=name, email=email)


def mint_token(config: Config, sub: str, role: str, name: str | None = None, ttl: int = 3600,
               email: str | None = None) -> str:
    """Sign a token with the configured key (HS256 secret, or JWT_PRIVATE_KEY for RS256)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    if name:
        claims["name"] = name
    if email:
        claims["email"] = email
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    if config.jwt_public_key:
        if not config.jwt_private_key:
            raise ValueError("RS256 is configured: set JWT_PRIVATE_KEY to mint tokens")
        return jwt.encode(claims, config.jwt_private_key, algorithm="RS256")
    if not config.jwt_secret:
        raise ValueError("set JWT_SECRET (or JWT_PUBLIC_KEY and JWT_PRIVATE_KEY) to mint tokens")
    return jwt.encode(claims, config.jwt_secret, algorithm="HS256")
