"""A real SMTP server for the email tests (aiosmtpd in this process) and the steps they share."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import RunningServer

NS = "/notifications"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts and can refuse the next deliveries."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refusals: list[str] = []
        self.refuse_all: str | None = None  # refuse every delivery with this reply while set
        self.sessions = 0  # SMTP connections opened
        self.controller: Controller | None = None

    def restart(self, port: int) -> None:
        """(Re)start the SMTP server on `port`: the sessions open on the last one are cut."""
        self.stop()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self) -> None:
        """Stop the SMTP server."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        if self.refuse_all is not None:
            return self.refuse_all
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


async def offline(server: RunningServer, user: str, address: str | None = "ann@example.org",
                  role: str = "client") -> None:
    """The user has connected once (careline learnt their address from the token) and is offline now."""
    client = await server.client(user, role, NS, email=address)
    await client.disconnect()


async def notify(server: RunningServer, user: str = "ann", **extra: Any) -> None:
    fields = {"category": "booking", "title": "Session confirmed", "body": "Tue 03 Mar 2026, 10:00 UTC", **extra}
    assert await server.notifications.notifications.notify(user, **fields) is not None


async def tick(server: RunningServer) -> int:
    channel = server.notifications.email
    assert channel is not None
    return await channel.tick()


def text_of(message: EmailMessage) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")


