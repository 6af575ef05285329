"""Namespaces of features this server does not offer yet: every request is answered `unavailable`."""
from __future__ import annotations

from typing import Any, ClassVar

from errors import Unavailable
from handlers.auth import User
from realtime.base import BaseNamespace, RequestSpec


class UnavailableNamespace(BaseNamespace[None]):
    """A contract namespace whose feature is not built: authenticated sockets connect, requests get `unavailable`."""

    feature: ClassVar[str] = ""
    contract_events: ClassVar[tuple[str, ...]] = ()

    async def answer(self, event: str, spec: RequestSpec | None, sid: str, user: User,
                     args: tuple[Any, ...]) -> Any:
        """A contract request is refused as unavailable; `session:refresh` and unknown events as everywhere."""
        if spec is None and event in self.contract_events:
            raise Unavailable(f"{self.feature} is not available on this server")
        return await super().answer(event, spec, sid, user, args)


class MeetingsNamespace(UnavailableNamespace):
    """Session video rooms (CONTRACT §4): not built yet."""

    path, feature = "/meetings", "Meetings"
    contract_events = ("meeting:create", "meeting:get", "meeting:join", "lobby:admit", "lobby:deny", "meeting:leave",
                       "meeting:end", "signal", "participant:mute", "participant:kick", "recording:consent",
                       "recording:start", "recording:stop", "meeting:stats")


class BillingNamespace(UnavailableNamespace):
    """Billing with Stripe (CONTRACT §7): not built yet."""

    path, feature = "/billing", "Billing"
    contract_events = ("plan:list", "payment-method:setup", "payment-method:list", "payment-method:set-default",
                       "payment-method:remove", "subscription:get", "subscription:create", "subscription:change",
                       "subscription:cancel", "subscription:reactivate", "invoice:list", "invoice:pay",
                       "booking:pay", "payment:refund")
