"""Billing test helpers: careline servers wired to localstripe, cards added as Stripe.js would, signed events."""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import stripe

from stores.embedded import free_port
from tests.clients import SioClient
from tests.conftest import RunningServer, StartServer

NS = "/billing"
API_KEY = "sk_test_careline"
WEBHOOK_SECRET = "whsec_careline_test"
GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000341"
THREE_D_SECURE_CARD = "4000002500003155"
NOWHERE = "http://127.0.0.1:9/"  # where unregistered webhooks point (connection refused at once)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/balance", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (unauthenticated)
    except OSError:
        return False


class LocalStripe:
    """The one localstripe of this test process (it keeps state in one fixed file: never two at once).

    Started from scratch on a free port on first use, by the `localstripe_url` session fixture or by a
    test outside tests/billing/ that needs a Stripe peer (the authorization matrix); stopped by its
    process id when the session ends (the fixture's teardown, else at exit).
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._url = ""
        atexit.register(self.stop)

    def url(self) -> str:
        """The running localstripe's base URL (started now if it is not running)."""
        if self._process is not None and self._process.poll() is None:
            return self._url
        port = free_port()
        executable = Path(sys.executable).with_name("localstripe")
        process = subprocess.Popen([str(executable), "--port", str(port), "--from-scratch"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(10)
                raise RuntimeError("localstripe did not start")
            time.sleep(0.1)
        self._process, self._url = process, url
        return url

    def stop(self) -> None:
        """Stop it (if this process started it and it still runs)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(10)


LOCALSTRIPE = LocalStripe()


class StripePeer:
    """Direct calls to localstripe: products and plans (the dashboard), cards (Stripe.js), webhook config."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = stripe.AIOHTTPClient()
        self.v1 = stripe.StripeClient(API_KEY, base_addresses={"api": url}, http_client=self.http).v1
        self.hooks: list[str] = []

    async def close(self) -> None:
        """Point this test's webhooks nowhere, close the HTTP session."""
        for hook in self.hooks:
            await self.register(hook, NOWHERE)
        await self.http.close_async()

    async def register(self, hook_id: str, url: str, secret: str = WEBHOOK_SECRET) -> None:
        """Make localstripe deliver its events to `url` (signed with `secret`)."""
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.url}/_config/webhooks/{hook_id}", json={"url": url, "secret": secret}) as response:
            assert response.status == 200, await response.text()
        if hook_id not in self.hooks:
            self.hooks.append(hook_id)

    async def plans(self, *amounts: int, interval: str = "month") -> tuple[str, list[str]]:
        """A product with one monthly plan per amount; (product id, plan ids)."""
        product = await self.v1.products.create_async({"name": "careline " + secrets.token_hex(3)})
        ids = []
        for amount in amounts:
            plan_id = f"plan_{secrets.token_hex(4)}"
            await self.v1.plans.create_async({"id": plan_id, "product": product.id, "amount": amount,
                                              "currency": "usd", "interval": interval, "nickname": f"{amount}"})
            ids.append(plan_id)
        return product.id, ids

    async def card(self, number: str = GOOD_CARD) -> str:
        """A PaymentMethod as Stripe Elements creates it in the browser."""
        method = await self.v1.payment_methods.create_async({"type": "card", "card": {
            "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        return str(method.id)

    async def confirm_setup(self, client_secret: str, number: str = GOOD_CARD) -> str:
        """What Stripe.js does with a SetupIntent's client secret: a card, confirmed on it; the card's id."""
        method_id = await self.card(number)
        setup_intent_id = client_secret.split("_secret_")[0]
        await self.v1.setup_intents.confirm_async(setup_intent_id, {"payment_method": method_id})
        return method_id


def stripe_settings(stripe_url: str, **overrides: Any) -> dict[str, Any]:
    """Server settings for Stripe at `stripe_url` (localstripe): keys, webhook secret, no plan cache."""
    return {"stripe_api_key": API_KEY, "stripe_api_base": stripe_url, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_plan_cache_seconds": 0, "billing_webhook_retry_seconds": 0.2, **overrides}


async def billing_server(start_server: StartServer, peer: StripePeer, hook: str = "careline-1",
                         redis: bool = False, deliveries: bool = True, **overrides: Any) -> RunningServer:
    """A careline server with Stripe configured against localstripe, its webhook URL registered there
    (with deliveries=False, localstripe's events go nowhere: the test delivers events itself)."""
    server = await start_server(redis=redis, **stripe_settings(peer.url, **overrides))
    await peer.register(hook, server.url + "/webhooks/stripe" if deliveries else NOWHERE)
    return server


async def add_card(client: SioClient, peer: StripePeer, number: str = GOOD_CARD) -> str:
    """payment-method:setup, confirmed in 'the browser'; careline attaches the card (it is listed)."""
    secret = (await client.ok("payment-method:setup", {}))["clientSecret"]
    method_id = await peer.confirm_setup(secret, number)
    listed = await client.ok("payment-method:list", {})
    assert method_id in [card["id"] for card in listed["items"]]
    return method_id


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    """A body and `Stripe-Signature` header as Stripe signs them (`t=...,v1=HMAC-SHA256(t.body)`)."""
    body = json.dumps(event).encode()
    timestamp = int(time.time()) if at is None else at
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return body, f"t={timestamp},v1={signature}"


def event_of(kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """A Stripe event envelope around an object."""
    return {"id": f"evt_{secrets.token_hex(8)}", "object": "event", "type": kind, "api_version": "2020-08-27",
            "created": created or int(time.time()), "data": {"object": obj}, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None}}


async def post_event(server: RunningServer, body: bytes, header: str | None) -> tuple[int, Any]:
    """POST one delivery to the server's webhook route; (status, JSON answer)."""
    headers = {"Content-Type": "application/json", **({"Stripe-Signature": header} if header else {})}
    async with aiohttp.ClientSession() as session, session.post(server.url + "/webhooks/stripe", data=body,
                                                                headers=headers) as response:
        return response.status, await response.json()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Wait until `check()` returns something truthy (webhooks arrive after localstripe's 1 s delay)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
