"""Sending email over SMTP (aiosmtplib) to the server in SMTP_URL, with STARTTLS when it offers it.

`SmtpSender` keeps a small pool of persistent SMTP sessions: a message takes a free session (or opens one,
at most `connections` at once), and a session that failed in any way other than a clean refusal of that one
message is closed, so the next message opens a fresh one. A message whose pooled session turns out to be
gone before it was handed over (the server closed an idle connection) is tried once more on a new session.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import charset as charsets
from email import policy as policies
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

SMTP_TIMEOUT_SECONDS = 15.0
DEFAULT_CONNECTIONS = 4
UTF8_QP = charsets.Charset("utf-8")
UTF8_QP.body_encoding = charsets.QP  # readable bodies; compat32 MIME: ~7x cheaper to build than EmailMessage
UNFOLDED = policies.compat32.clone(max_line_length=998)  # RFC 5322's limit: one List-Unsubscribe line


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
    """One SMTP server (`smtp://user:pass@host:port`), reached through at most `connections` sessions."""

    def __init__(self, url: str, sender: str, connections: int = DEFAULT_CONNECTIONS) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "localhost", parts.port or 587
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.envelope_sender = parseaddr(sender)[1]
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, mail: OutgoingEmail) -> None:
        """Hand the email to the server; raises SmtpRefused (never with the address or the content)."""
        message = self._message(mail)
        raw = message.as_bytes(policy=UNFOLDED)
        async with self._slots:
            try:
                await self._send_pooled(mail.to, raw)
            except aiosmtplib.SMTPResponseException as exc:
                raise SmtpRefused(f"SMTP {exc.code}", temporary=400 <= exc.code < 500) from None
            except aiosmtplib.SMTPRecipientsRefused as exc:
                code = exc.recipients[0].code if exc.recipients else 450
                raise SmtpRefused(f"SMTP {code}", temporary=400 <= code < 500) from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise SmtpRefused(type(exc).__name__, temporary=True) from None

    async def _send_pooled(self, to: str, raw: bytes) -> None:
        """Send on an idle session (or a new one); a stale idle session gets one retry on a fresh one."""
        reused = bool(self._idle)
        session = self._idle.pop() if reused else await self._open()
        try:
            await self._send_on(session, to, raw)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise
            await self._send_on(await self._open(), to, raw)

    async def _send_on(self, session: aiosmtplib.SMTP, to: str, raw: bytes) -> None:
        """One message on one session; the session goes back to the pool only while it is usable."""
        try:
            await session.sendmail(self.envelope_sender, [to], raw)
        except aiosmtplib.SMTPServerDisconnected:
            session.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            self._keep_if_usable(session, exc.code)
            raise
        except BaseException:
            session.close()
            raise
        self._idle.append(session)

    def _keep_if_usable(self, session: aiosmtplib.SMTP, code: int) -> None:
        """After a refusal aiosmtplib has reset the session; 421 means the server is closing it."""
        if code != 421 and session.is_connected:
            self._idle.append(session)
        else:
            session.close()

    async def _open(self) -> aiosmtplib.SMTP:
        session = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=SMTP_TIMEOUT_SECONDS)
        await session.connect()
        try:
            if self.username is not None and self.password is not None:
                await session.login(self.username, self.password)
        except BaseException:
            session.close()
            raise
        return session

    def _message(self, mail: OutgoingEmail) -> MIMEMultipart:
        message = MIMEMultipart("alternative")
        headers = {"From": self.sender, "To": mail.to, "Subject": mail.subject, "Date": formatdate(),
                   "Message-ID": make_msgid(domain=self.envelope_sender.rpartition("@")[2] or None), **mail.headers}
        for name, value in headers.items():
            message[name] = value if value.isascii() else Header(value, "utf-8").encode()
        for body, subtype in ((mail.text, "plain"), (mail.html, "html")):
            part = MIMEText("", subtype)
            part.set_payload(body, UTF8_QP)
            message.attach(part)
        return message

    async def close(self) -> None:
        """Say goodbye on every idle session."""
        idle, self._idle = self._idle, []
        for session in idle:
            try:
                await asyncio.wait_for(session.quit(), 2.0)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                session.close()
