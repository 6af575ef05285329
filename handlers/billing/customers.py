"""Each user's Stripe customer (made on first need) and the payment methods that belong to it."""
from __future__ import annotations

from typing import Any

from errors import NotFound
from stores.billing.customers import CustomerStore
from stores.billing.stripe_api import StripeGateway

Obj = dict[str, Any]


def customer_of(obj: Obj) -> str | None:
    """The customer id an object names (expanded or not)."""
    value = obj.get("customer")
    return value.get("id") if isinstance(value, dict) else value


class Customers:
    """user -> customer, and the ownership checks every billing request makes."""

    def __init__(self, store: CustomerStore, gateway: StripeGateway) -> None:
        self.store = store
        self.gateway = gateway

    async def of(self, user_id: str) -> str:
        """The user's customer id, created at Stripe on first need (two racing processes keep one mapping)."""
        known = await self.store.customer_of(user_id)
        if known is not None:
            return known
        created = await self.gateway.create_customer(user_id)
        return await self.store.remember(user_id, created["id"])

    async def existing(self, user_id: str) -> str | None:
        """The user's customer id, without creating one."""
        return await self.store.customer_of(user_id)

    async def settle_setup_intents(self, user_id: str) -> None:
        """Attach the card of every succeeded SetupIntent of the user (Stripe does this itself, localstripe not)."""
        customer = await self.store.customer_of(user_id)
        for setup_intent_id in await self.store.setup_intents(user_id):
            intent = await self.gateway.setup_intent(setup_intent_id)
            await self.attach_from(intent)
            if intent.get("status") in ("succeeded", "canceled") and customer is not None:
                await self.store.settle_setup_intent(user_id, setup_intent_id)

    async def attach_from(self, intent: Obj) -> None:
        """A succeeded SetupIntent's card attached to its customer (again: no change)."""
        method, customer = intent.get("payment_method"), customer_of(intent)
        method_id = method.get("id") if isinstance(method, dict) else method
        if intent.get("status") != "succeeded" or not method_id or not customer:
            return
        card = await self.gateway.payment_method(method_id)
        if customer_of(card) is None:
            await self.gateway.attach(method_id, customer)

    async def owned_method(self, user_id: str, method_id: str) -> tuple[str, Obj]:
        """(customer id, card) when the card belongs to the caller's customer; `not_found` otherwise."""
        await self.settle_setup_intents(user_id)
        customer = await self.store.customer_of(user_id)
        if customer is None:
            raise NotFound("No such payment method")
        card = await self.gateway.payment_method(method_id)
        if customer_of(card) != customer:
            raise NotFound("No such payment method")
        return customer, card
