"""Fixtures of the notification tests: a real SMTP server (aiosmtpd) on a free port."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stores.embedded import free_port
from tests.notifications.email_peer import Mailbox


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    box.restart(port)
    yield box, port
    box.stop()
