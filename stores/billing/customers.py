"""`billing_customers`: the one Stripe customer of each careline user (unique both ways)."""
from __future__ import annotations

from pymongo import ASCENDING

from clock import utcnow
from stores.mongo import Database, insert_or_existing


class CustomerStore:
    """user id <-> Stripe customer id."""

    def __init__(self, db: Database) -> None:
        self._customers = db["billing_customers"]

    async def ensure_indexes(self) -> None:
        """`_id` is the user id; a customer belongs to one user."""
        await self._customers.create_index([("customerId", ASCENDING)], unique=True)

    async def customer_of(self, user_id: str) -> str | None:
        """The user's customer id, if they have one."""
        doc = await self._customers.find_one({"_id": user_id})
        return doc["customerId"] if doc else None

    async def user_of(self, customer_id: str) -> str | None:
        """The user a customer belongs to."""
        doc = await self._customers.find_one({"customerId": customer_id})
        return doc["_id"] if doc else None

    async def remember(self, user_id: str, customer_id: str) -> str:
        """Store the mapping; when another process stored one first, that one wins (its id is returned)."""
        doc, _created = await insert_or_existing(
            self._customers, {"_id": user_id, "customerId": customer_id, "createdAt": utcnow()}, {"_id": user_id})
        return str(doc["customerId"])

    async def add_setup_intent(self, user_id: str, setup_intent_id: str) -> None:
        """A SetupIntent handed to the user's browser, whose card is attached once it succeeds."""
        await self._customers.update_one({"_id": user_id}, {"$addToSet": {"setupIntents": setup_intent_id}})

    async def setup_intents(self, user_id: str) -> list[str]:
        """The user's SetupIntents not settled yet."""
        doc = await self._customers.find_one({"_id": user_id}, {"setupIntents": 1})
        return list((doc or {}).get("setupIntents") or [])

    async def settle_setup_intent(self, user_id: str, setup_intent_id: str) -> None:
        """The SetupIntent's card is attached (or it was cancelled): nothing more to do for it."""
        await self._customers.update_one({"_id": user_id}, {"$pull": {"setupIntents": setup_intent_id}})
