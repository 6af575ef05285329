"""plan:list: the configured product's active plans from Stripe, reused for a short while."""
from __future__ import annotations

import time
from typing import Any

from handlers.billing.deltas import Plan
from stores.billing.stripe_api import StripeGateway


def plan_of(obj: dict[str, Any]) -> Plan:
    """A Stripe plan as careline shows it."""
    return Plan(obj["id"], obj.get("nickname") or obj.get("name") or obj["id"], int(obj.get("amount") or 0),
                obj["currency"], obj["interval"], obj.get("usage_type") == "metered")


class PlanCatalog:
    """Plans cached for `ttl` seconds (monotonic time: a cache age, not a business time)."""

    def __init__(self, gateway: StripeGateway, product: str | None, ttl: float) -> None:
        self.gateway = gateway
        self.product = product
        self.ttl = ttl
        self._cached: tuple[float, list[Plan]] | None = None

    async def plans(self) -> dict[str, list[Plan]]:
        """`{items}`: every active plan, cheapest first."""
        if self._cached is None or time.monotonic() - self._cached[0] > self.ttl:
            found = [plan_of(obj) for obj in await self.gateway.plans(self.product)]
            self._cached = time.monotonic(), sorted(found, key=lambda plan: (plan.amount, plan.id))
        return {"items": self._cached[1]}

    async def plan(self, plan_id: str) -> Plan | None:
        """One offered plan, or None."""
        return next((plan for plan in (await self.plans())["items"] if plan.id == plan_id), None)
