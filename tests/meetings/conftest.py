"""Fixtures of the meetings tests: a real TURN/STUN server (coturn)."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.embedded import free_port

TURN_SECRET = "turn-secret-" + "y" * 20


def _wait_answering(port: int) -> None:
    """Until coturn answers a STUN binding request on its UDP port."""
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + os.urandom(12)
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(request, ("127.0.0.1", port))
            try:
                if sock.recv(2048)[:2] == b"\x01\x01":
                    return
            except OSError:
                pass
    raise RuntimeError("coturn did not start")


@pytest.fixture
def turn_port(tmp_path: Path) -> Iterator[int]:
    """coturn on a free port, loopback only, authenticating with TURN_SECRET (the TURN REST scheme)."""
    executable = shutil.which("turnserver")
    if executable is None:
        pytest.fail("coturn is required: scripts/test installs it (apt-get install coturn)")
    port, low = free_port(), random.randrange(20000, 60000, 100)
    process = subprocess.Popen(
        [executable, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         f"--min-port={low}", f"--max-port={low + 99}", "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
         "--realm=careline.test", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
         "--log-file=stdout", "--simple-log"], stdout=(tmp_path / "turn.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_answering(port)
        yield port
    finally:
        process.terminate()
        process.wait(5)
