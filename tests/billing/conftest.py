"""localstripe for the billing tests: one process for the whole run (it keeps state in one fixed file)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.billing.helpers import LOCALSTRIPE, StripePeer


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """One localstripe for the whole run (shared with the authorization matrix's /billing cells)."""
    yield LOCALSTRIPE.url()
    LOCALSTRIPE.stop()


@pytest.fixture
async def peer(localstripe_url: str) -> AsyncIterator[StripePeer]:
    """What a browser (Stripe.js) and the Stripe dashboard would do, against localstripe."""
    stripe_peer = StripePeer(localstripe_url)
    yield stripe_peer
    await stripe_peer.close()
