"""Sending one email over SMTP (aiosmtplib) to the server in SMTP_URL, with STARTTLS when it offers it."""
from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

SMTP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email: plain text and HTML alternatives, and extra headers (List-Unsubscribe)."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


class SmtpRefused(Exception):
    """The email was not accepted; `temporary` when trying again later may work (4xx, no connection)."""

    def __init__(self, reason: str, temporary: bool) -> None:
        super().__init__(reason)
        self.reason, self.temporary = reason, temporary


class SmtpSender:
    """One SMTP server (`smtp://user:pass@host:port`)."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "localhost", parts.port or 587
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender

    async def send(self, mail: OutgoingEmail) -> None:
        """Hand the email to the server; raises SmtpRefused (never with the address or the content)."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        for name, value in mail.headers.items():
            message[name] = value
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, username=self.username,
                                  password=self.password, timeout=SMTP_TIMEOUT_SECONDS)
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpRefused(f"SMTP {exc.code}", temporary=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpRefused(type(exc).__name__, temporary=True) from None
