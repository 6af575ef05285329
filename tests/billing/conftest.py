"""localstripe for the billing tests: one process for the whole run (it keeps state in one fixed file)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stores.embedded import free_port
from tests.billing.helpers import StripePeer


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/balance", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (unauthenticated)
    except OSError:
        return False


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """One localstripe, started from scratch on a free port for this run, stopped by its process id."""
    port = free_port()
    executable = Path(sys.executable).with_name("localstripe")
    process = subprocess.Popen([str(executable), "--port", str(port), "--from-scratch"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("localstripe did not start")
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
async def peer(localstripe_url: str) -> AsyncIterator[StripePeer]:
    """What a browser (Stripe.js) and the Stripe dashboard would do, against localstripe."""
    stripe_peer = StripePeer(localstripe_url)
    yield stripe_peer
    await stripe_peer.close()
