"""A local Web Push service: checks the VAPID JWT, decrypts aes128gcm bodies, answers what the test asks."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its own P-256 key pair and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        """The PushSubscription JSON a browser hands to the page."""
        point = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}


@dataclass
class Received:
    """One accepted, verified and decrypted push."""

    token: str
    payload: dict[str, Any]
    headers: Mapping[str, str]  # case-insensitive
    claims: dict[str, Any]


class PushService:
    """aiohttp server on 127.0.0.1; `/push/<token>` is the endpoint of browser `<token>`."""

    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.browsers: dict[str, Browser] = {}
        self.answers: list[int] = []  # next statuses to answer with (then 201)
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        self.attempts: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/push/{token}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def browser(self, name: str) -> Browser:
        """A new browser subscribed at this service."""
        self.browsers[name] = Browser(f"{self.url}/push/{name}")
        return self.browsers[name]

    def _verify(self, request: web.Request) -> dict[str, Any]:
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        assert scheme == "vapid", "VAPID Authorization scheme expected"
        parts = dict(part.strip().split("=", 1) for part in params.split(","))
        assert parts["k"] == self.vapid_public_key, "k is not the server's VAPID public key"
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
        claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=self.url)
        assert claims["exp"] > time.time() and claims["sub"].startswith("mailto:")
        return claims

    async def _push(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        status = self.answers.pop(0) if self.answers else 201
        self.attempts.append((token, status))
        if status != 201:
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.Response(status=status, headers=headers)
        try:
            claims = self._verify(request)
            browser = self.browsers[token]
            assert request.headers.get("Content-Encoding") == "aes128gcm"
            body = http_ece.decrypt(await request.read(), private_key=browser.private_key,
                                    auth_secret=browser.auth, version="aes128gcm")
        except Exception as exc:  # the test asserts on `errors`
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=400)
        await self.received.put(Received(token, json.loads(body), request.headers.copy(), claims))
        return web.Response(status=201)

    async def next(self, timeout: float = 5.0) -> Received:
        """The next accepted push."""
        return await asyncio.wait_for(self.received.get(), timeout)

    async def nothing(self, within: float = 0.5) -> None:
        """Assert no push arrives within `within` seconds."""
        await asyncio.sleep(within)
        assert self.received.empty(), f"unexpected push: {self.received.get_nowait()}"
        assert not self.errors, self.errors
