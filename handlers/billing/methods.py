"""payment-method:*: SetupIntents for Stripe Elements, and the caller's saved cards."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.billing.customers import Customers
from handlers.billing.deltas import Card, SetupSecret
from stores.billing.stripe_api import StripeGateway


def _card(method: dict[str, Any], default: str | None) -> Card:
    card = method.get("card") or {}
    return Card(method["id"], card.get("brand"), card.get("last4"), card.get("exp_month"), card.get("exp_year"),
                method["id"] == default)


def default_method(customer: dict[str, Any]) -> str | None:
    """The card a customer's invoices are charged to."""
    value = (customer.get("invoice_settings") or {}).get("default_payment_method")
    return value.get("id") if isinstance(value, dict) else value


class PaymentMethods:
    """The caller's cards: card data goes from the browser to Stripe, careline sees ids and last digits."""

    def __init__(self, customers: Customers, gateway: StripeGateway) -> None:
        self.customers = customers
        self.gateway = gateway

    async def setup(self, user: User) -> SetupSecret:
        """A SetupIntent for the caller's customer; its card is attached once it succeeds."""
        customer = await self.customers.of(user.id)
        intent = await self.gateway.create_setup_intent(customer)
        await self.customers.store.add_setup_intent(user.id, intent["id"])
        return SetupSecret(intent["client_secret"])

    async def cards(self, user: User) -> dict[str, list[Card]]:
        """The caller's saved cards (none before their first setup)."""
        await self.customers.settle_setup_intents(user.id)
        customer = await self.customers.existing(user.id)
        if customer is None:
            return {"items": []}
        default = default_method(await self.gateway.customer(customer))
        return {"items": [_card(method, default) for method in await self.gateway.payment_methods(customer)]}

    async def set_default(self, user: User, payment_method_id: str) -> None:
        """Charge invoices to this card of the caller's."""
        customer, _card_obj = await self.customers.owned_method(user.id, payment_method_id)
        await self.gateway.set_default_method(customer, payment_method_id)

    async def remove(self, user: User, payment_method_id: str) -> None:
        """Detach one of the caller's cards (no longer the default either)."""
        customer, _card_obj = await self.customers.owned_method(user.id, payment_method_id)
        if default_method(await self.gateway.customer(customer)) == payment_method_id:
            await self.gateway.set_default_method(customer, None)
        await self.gateway.detach(payment_method_id)
