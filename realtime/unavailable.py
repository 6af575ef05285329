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

    async def answer(self, event: Any, spec: RequestSpec | None, sid: str, user: User,
                     args: tuple[Any, ...]) -> Any:
        """A contract request is refused as unavailable; `session:refresh` and unknown events as everywhere."""
        if spec is None and event in self.contract_events:
            raise Unavailable(f"{self.feature} is not available on this server")
        return await super().answer(event, spec, sid, user, args)


