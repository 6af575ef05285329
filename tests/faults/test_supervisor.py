"""The embedded database's supervisor and its rules, on real processes with tightened timings.

A pause (SIGSTOP) is never taken for a hang; a child that is alive but silent is killed and restarted;
restarts back off; a stop on purpose and shutdown are never undone by a restart.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stores.embedded import EmbeddedMongo
from stores.supervisor import EmbeddedSupervisor, Rules
from tests.faults.conftest import until

FAST = Rules(check_every=0.05, ping_every=0.25, ping_timeout=0.5, hung_after=1.5, hung_pings=3,
             backoff_first=0.1, backoff_max=0.4, stable_after=2.0, start_timeout=30.0)

SILENT = """
import socket, sys, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
time.sleep(3600)   # accepts connections (the kernel's backlog) and never answers: a hung database
"""


class StandIn(EmbeddedMongo):
    """An EmbeddedMongo whose next starts run stand-ins ("silent": listens, never answers; "crash": exits at
    once) before the real SecantusDB."""

    def __init__(self, storage_path: Path, *stand_ins: str) -> None:
        super().__init__(storage_path)
        self.stand_ins = list(stand_ins)
        self.spawned: list[subprocess.Popen[bytes]] = []

    def start_process(self) -> None:
        if not self.stand_ins:
            super().start_process()
        else:
            code = SILENT if self.stand_ins.pop(0) == "silent" else "raise SystemExit(3)"
            self._process = subprocess.Popen([sys.executable, "-c", code, str(self.port)])
        assert self._process is not None
        self.spawned.append(self._process)


async def _until(condition: Callable[[], object], timeout: float) -> None:
    assert await until(condition, timeout, 0.02), "condition not met in time"


def test_backoff_doubles_from_half_a_second_to_ten() -> None:
    assert [Rules().backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 10, 10, 10]


async def test_a_paused_database_is_reported_and_never_restarted(tmp_path: Path) -> None:
    embedded = EmbeddedMongo(tmp_path / "db")
    await embedded.start_async()
    supervisor = EmbeddedSupervisor(embedded, FAST)
    supervisor.start()
    pid = embedded.pid()
    assert pid is not None
    try:
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(FAST.hung_after * 2.5)  # paused well beyond the time a silent child gets
        assert supervisor.problem == "embedded database paused by a signal, not restarted"
        assert supervisor.restarts == 0 and embedded.pid() == pid
        os.kill(pid, signal.SIGCONT)
        await _until(lambda: supervisor.problem is None, 10)
        assert supervisor.restarts == 0 and embedded.pid() == pid
    finally:
        os.kill(pid, signal.SIGCONT)
        await supervisor.close()
        embedded.stop()


async def test_a_silent_database_is_killed_and_restarted_on_the_same_port(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    embedded = StandIn(tmp_path / "db", "silent")
    embedded.start_process()
    port, restarted = embedded.port, []
    supervisor = EmbeddedSupervisor(embedded, FAST, on_restart=lambda: restarted.append(time.monotonic()))
    caplog.set_level(logging.WARNING, "careline.embedded")
    started = time.monotonic()
    supervisor.start()
    try:
        await _until(lambda: supervisor.problem is not None and "not answering" in supervisor.problem, 5)
        await _until(lambda: restarted, 10)
        assert restarted[0] - started >= FAST.hung_after  # not before it was silent for `hung_after`
        assert embedded.spawned[0].returncode == -signal.SIGKILL
        await _until(lambda: supervisor.problem is None, 30)
        assert supervisor.restarts == 1 and embedded.port == port and embedded.running
        assert "has not answered" in caplog.text and "restarting the embedded database" in caplog.text
    finally:
        await supervisor.close()
        embedded.stop()


async def test_restarts_back_off_while_the_database_keeps_failing(tmp_path: Path) -> None:
    embedded = StandIn(tmp_path / "db")
    await embedded.start_async()
    embedded.stand_ins = ["crash", "crash", "crash"]  # the first three restarts after the kill crash at once
    seen: set[str] = set()
    supervisor = EmbeddedSupervisor(embedded, FAST)
    supervisor.start()
    try:
        embedded.kill()
        started = time.monotonic()

        def recovered() -> bool:
            seen.add(supervisor.problem or "")
            return supervisor.restarts == 4 and supervisor.problem is None

        await _until(recovered, 30)
        assert {f"embedded database restarting, attempt {n}" for n in (1, 2, 3, 4)} <= seen
        assert time.monotonic() - started >= 0.1 + 0.2 + 0.4 + 0.4  # the waits before attempts 1..4
        assert [process.returncode for process in embedded.spawned[1:4]] == [3, 3, 3]
    finally:
        await supervisor.close()
        embedded.stop()


async def test_a_stop_on_purpose_and_shutdown_are_never_undone(tmp_path: Path) -> None:
    embedded = EmbeddedMongo(tmp_path / "db")
    await embedded.start_async()
    supervisor = EmbeddedSupervisor(embedded, FAST)
    supervisor.start()
    try:
        embedded.stop()
        await asyncio.sleep(1.0)
        assert supervisor.problem == "embedded database stopped" and supervisor.restarts == 0
        assert not embedded.running
        await embedded.start_async()  # whoever stopped it starts it again: watched as before
        await _until(lambda: supervisor.problem is None, 5)
        slow = dataclasses.replace(FAST, backoff_first=5.0, backoff_max=5.0)
        await supervisor.close()
        supervisor = EmbeddedSupervisor(embedded, slow)
        supervisor.start()
        embedded.kill()
        await _until(lambda: supervisor.problem == "embedded database restarting, attempt 1", 5)
        await supervisor.close()  # shutdown while waiting to restart: no restart follows
        await asyncio.sleep(0.5)
        assert supervisor.restarts == 0 and not embedded.running
    finally:
        await supervisor.close()
        embedded.stop()
