"""Stripe, reached through the official library's async methods; objects come back as plain dicts.

Every call is awaited on the event loop (the library's `*_async` methods over its aiohttp client), never
run synchronously. Stripe's errors become careline's: an unknown id `NotFound`, a declined card
`CardDeclined`, anything else that means Stripe is unreachable or failing `Unavailable`.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
import stripe

from errors import InvalidPayload, NotFound, Unavailable

log = logging.getLogger("careline.billing.stripe")
Obj = dict[str, Any]
SIGNATURE_TOLERANCE_SECONDS = 300


class CardDeclined(Exception):
    """The card was declined (the payment stays unpaid)."""


class StripeRefused(Exception):
    """Stripe refused a request as invalid in the current state (e.g. paying a paid invoice)."""


def _plain(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def verify_event(payload: bytes, header: str | None, secret: str) -> Obj:
    """The event a `Stripe-Signature` header vouches for; `InvalidPayload` when it does not (or is too old).

    The library's signature check (HMAC-SHA256 of `t.body`, constant-time compare, 300 s tolerance),
    then a plain JSON parse: the event is read as data, not built into library objects.
    """
    if not header:
        raise InvalidPayload("Missing Stripe-Signature header", {"Stripe-Signature": ["Required."]})
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret,
                                              tolerance=SIGNATURE_TOLERANCE_SECONDS)
        event = orjson.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise InvalidPayload("Bad Stripe signature", {"Stripe-Signature": ["Does not verify."]}) from None
    except orjson.JSONDecodeError:
        raise InvalidPayload("The body is not a Stripe event", {"body": ["Not JSON."]}) from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise InvalidPayload("The body is not a Stripe event", {"body": ["No id or type."]})
    return event


class StripeGateway:
    """The Stripe calls billing makes, each one named; idempotency keys where a call creates something."""

    def __init__(self, api_key: str, api_base: str | None) -> None:
        addresses: Any = {"api": api_base} if api_base else None
        self._http = stripe.AIOHTTPClient()
        self._client = stripe.StripeClient(api_key, base_addresses=addresses, http_client=self._http,
                                           max_network_retries=2)
        self.v1 = self._client.v1

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close_async()

    async def _call(self, service: str, action: str, *ids: str, params: Obj | None = None,
                    key: str | None = None) -> Obj:
        method = getattr(getattr(self.v1, service), f"{action}_async")
        options: Any = {"idempotency_key": key} if key else {}
        try:
            return _plain(await method(*ids, params or {}, options))
        except stripe.CardError as error:
            raise CardDeclined(error.user_message or "declined") from None
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                raise NotFound("No such billing object") from None
            raise StripeRefused(str(error.user_message or error)) from None
        except stripe.StripeError as error:
            log.warning("stripe %s.%s failed: %s", service, action, type(error).__name__)
            raise Unavailable("The payment provider is unavailable", {"dependency": "stripe"}) from None

    # -- customers and payment methods ----------------------------------------------------------

    async def create_customer(self, user_id: str) -> Obj:
        """A customer for one careline user (idempotent per user)."""
        return await self._call("customers", "create", params={"metadata": {"careline_user": user_id}},
                                key=f"careline-customer-{user_id}")

    async def customer(self, customer_id: str) -> Obj:
        """One customer."""
        return await self._call("customers", "retrieve", customer_id)

    async def set_default_method(self, customer_id: str, method_id: str | None) -> Obj:
        """The card invoices are charged to."""
        settings = {"invoice_settings": {"default_payment_method": method_id or ""}}
        return await self._call("customers", "update", customer_id, params=settings)

    async def create_setup_intent(self, customer_id: str) -> Obj:
        """A SetupIntent Stripe Elements confirms in the browser."""
        return await self._call("setup_intents", "create", params={"customer": customer_id, "usage": "off_session"})

    async def setup_intent(self, setup_intent_id: str) -> Obj:
        """One SetupIntent."""
        return await self._call("setup_intents", "retrieve", setup_intent_id)

    async def payment_method(self, method_id: str) -> Obj:
        """One payment method."""
        return await self._call("payment_methods", "retrieve", method_id)

    async def payment_methods(self, customer_id: str) -> list[Obj]:
        """A customer's cards."""
        found = await self._call("payment_methods", "list", params={"customer": customer_id, "type": "card",
                                                                    "limit": 100})
        return list(found.get("data") or [])

    async def attach(self, method_id: str, customer_id: str) -> Obj:
        """Attach a card to a customer (attaching it again changes nothing)."""
        return await self._call("payment_methods", "attach", method_id, params={"customer": customer_id})

    async def detach(self, method_id: str) -> Obj:
        """Detach a card from its customer."""
        return await self._call("payment_methods", "detach", method_id)

    # -- plans, subscriptions, invoices ---------------------------------------------------------

    async def plans(self, product: str | None) -> list[Obj]:
        """Active plans (of one product, when given)."""
        params: Obj = {"active": True, "limit": 100, **({"product": product} if product else {})}
        return list((await self._call("plans", "list", params=params)).get("data") or [])

    async def plan(self, plan_id: str) -> Obj:
        """One plan."""
        return await self._call("plans", "retrieve", plan_id)

    async def create_subscription(self, customer_id: str, plan_id: str, user_id: str, key: str) -> Obj:
        """Subscribe a customer to a plan (charged to their default card)."""
        params = {"customer": customer_id, "items": [{"plan": plan_id}], "metadata": {"careline_user": user_id}}
        return await self._call("subscriptions", "create", params=params, key=key)

    async def subscription(self, subscription_id: str) -> Obj:
        """One subscription."""
        return await self._call("subscriptions", "retrieve", subscription_id)

    async def update_subscription(self, subscription_id: str, params: Obj) -> Obj:
        """Change a subscription (plan, cancel at period end, metadata)."""
        return await self._call("subscriptions", "update", subscription_id, params=params)

    async def cancel_subscription(self, subscription_id: str) -> Obj:
        """End a subscription now."""
        return await self._call("subscriptions", "cancel", subscription_id)

    async def invoice(self, invoice_id: str) -> Obj:
        """One invoice."""
        return await self._call("invoices", "retrieve", invoice_id)

    async def pay_invoice(self, invoice_id: str) -> Obj:
        """Try to collect an open invoice now (from the customer's default card)."""
        return await self._call("invoices", "pay", invoice_id)

    # -- session payments and refunds -----------------------------------------------------------

    async def create_payment_intent(self, params: Obj, key: str) -> Obj:
        """A PaymentIntent (not yet confirmed)."""
        return await self._call("payment_intents", "create", params=params, key=key)

    async def confirm_payment_intent(self, intent_id: str, key: str) -> Obj:
        """Confirm a PaymentIntent (`CardDeclined` when the card is declined)."""
        return await self._call("payment_intents", "confirm", intent_id, key=key)

    async def payment_intent(self, intent_id: str) -> Obj:
        """One PaymentIntent."""
        return await self._call("payment_intents", "retrieve", intent_id)

    async def charge(self, charge_id: str) -> Obj:
        """One charge (its receipt URL)."""
        return await self._call("charges", "retrieve", charge_id)

    async def create_refund(self, intent_id: str, amount: int, metadata: dict[str, str], key: str) -> Obj:
        """Refund part of a payment."""
        params = {"payment_intent": intent_id, "amount": amount, "metadata": metadata}
        return await self._call("refunds", "create", params=params, key=key)

    async def refunds(self, intent_id: str) -> list[Obj]:
        """Every refund of a payment."""
        found = await self._call("refunds", "list", params={"payment_intent": intent_id, "limit": 100})
        return list(found.get("data") or [])
