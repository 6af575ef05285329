"""Keeps the embedded database running: restarts the SecantusDB child when it exits or stops answering.

The rules (`Rules` holds the numbers):

* **Exit.** The child is checked every `check_every` s (a `waitpid`, no I/O). When it has exited (a
  crash, an OOM kill, `kill -9`), it is restarted.
* **No answer.** Every `ping_every` s it is pinged on a connection of its own (not the app's pool, which
  a busy moment can fill), each ping bounded by `ping_timeout`. A child that is alive but has not answered
  for `hung_after` s, over at least `hung_pings` failed pings in a row, is killed (SIGKILL: it is hung,
  and SecantusDB's SIGTERM handler can hang too) and restarted. A slow moment, or a pause shorter than
  `hung_after`, never triggers a restart; `problem` reports it after `reported_after` failed pings in a row
  (one slow ping does not take careline out of a load balancer).
* **Paused.** A child stopped by a signal or a debugger (SIGSTOP, `gdb`; state T/t in /proc) is somebody's
  doing: it is never killed, only reported, and judged afresh once it runs again.
* **Stopped on purpose.** `EmbeddedMongo.stop()` (shutdown, a test) is never undone.
* **Backoff.** Restart attempt n waits min(`backoff_first` * 2^(n-1), `backoff_max`) s first: 0.5, 1, 2, 4,
  8, 10, 10, ... s. A restarted child that exits while starting, or does not answer within
  `start_timeout` s (long: WiredTiger may be replaying its log), is killed and the next attempt follows.
  The count goes back to 0 once a restarted child has answered for `stable_after` s, so a child that
  keeps dying soon after starting is restarted ever more slowly.
* The restarted child listens on the same port with the same storage path, so the app's client
  reconnects to the same URI and finds the same data. Each restart is logged (WARNING; never data)
  and counted (`restarts`, and `on_restart` for the metrics); `problem` says why the database is not
  ready (`/ready`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from stores.embedded import EmbeddedMongo

log = logging.getLogger("careline.embedded")


@dataclass(frozen=True)
class Rules:
    """When the supervisor acts (seconds, unless a count)."""

    check_every: float = 0.2
    ping_every: float = 1.0
    ping_timeout: float = 1.0
    hung_after: float = 10.0
    hung_pings: int = 3
    backoff_first: float = 0.5
    backoff_max: float = 10.0
    stable_after: float = 30.0
    start_timeout: float = 120.0
    reported_after: int = 2

    def backoff(self, attempt: int) -> float:
        """The wait before restart attempt `attempt` (1, 2, ...)."""
        return float(min(self.backoff_first * 2 ** min(attempt - 1, 30), self.backoff_max))


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class EmbeddedSupervisor:
    """A background task that watches one `EmbeddedMongo` and restarts its child (see the module's rules)."""

    def __init__(self, embedded: EmbeddedMongo, rules: Rules | None = None,
                 on_restart: Callable[[], object] | None = None) -> None:
        self.embedded = embedded
        self.rules = rules or Rules()
        self.restarts = 0  # children started to replace one that died or hung
        self._on_restart = on_restart
        self._attempt = 0  # restart attempts since the child last answered for `stable_after` s
        self._restarting = False
        self._back_at: float | None = None  # loop time a restarted child first answered
        self._failing_since: float | None = None  # loop time of the first failed ping in a row
        self._failed_pings = 0
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._client: AsyncMongoClient[dict[str, object]] | None = None

    # -- what /ready and /metrics read ----------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why the embedded database is not ready, or None while it runs and answers."""
        if not self.embedded.started:
            return "embedded database stopped"
        if self._restarting:
            return f"embedded database restarting, attempt {self._attempt}"
        code = self.embedded.exit_code()
        if code is not None:  # not noticed yet (within `check_every`)
            return f"embedded database exited ({_how(code)}), restarting"
        if self._paused:
            return "embedded database paused by a signal, not restarted"
        if self._failing_since is not None and self._failed_pings >= self.rules.reported_after:
            seconds = asyncio.get_running_loop().time() - self._failing_since
            return f"embedded database not answering for {seconds:.0f} s"
        return None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching (call from the event loop's thread: restarted children are spawned from it, and the
        kernel's parent-death signal follows the thread that forked)."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="embedded-database-supervisor")

    async def close(self) -> None:
        """Stop watching; a restart in progress is abandoned (its child killed). Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- the watch ------------------------------------------------------------------------------------

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.rules.ping_every
        while True:
            await asyncio.sleep(self.rules.check_every)
            if not self.embedded.started:  # stopped on purpose
                self._answered()
                continue
            code = self.embedded.exit_code()
            if code is not None:
                log.warning("embedded database exited (%s); restarting it", _how(code))
                await self._restart()
                next_ping = loop.time() + self.rules.ping_every
                continue
            if loop.time() < next_ping:
                continue
            next_ping = loop.time() + self.rules.ping_every
            if await self._answers():
                self._answered()
            elif self.embedded.paused():
                if not self._paused:
                    log.warning("embedded database is paused by a signal; not restarting it")
                self._paused, self._failing_since, self._failed_pings = True, loop.time(), 0
            elif self._failed(loop.time()):
                log.warning("embedded database has not answered for %.0f s (%d pings); killing and restarting it",
                            loop.time() - (self._failing_since or loop.time()), self._failed_pings)
                self.embedded.kill()
                await self._restart()
                next_ping = loop.time() + self.rules.ping_every

    def _answered(self) -> None:
        if self._paused:
            log.warning("embedded database runs again")
        self._paused, self._failing_since, self._failed_pings = False, None, 0
        loop = asyncio.get_running_loop()
        if self._attempt and self._back_at is not None and loop.time() - self._back_at >= self.rules.stable_after:
            self._attempt, self._back_at = 0, None

    def _failed(self, now: float) -> bool:
        """Count one failed ping of a running child; True when it counts as hung."""
        self._paused = False
        if self._failing_since is None:
            self._failing_since = now
        self._failed_pings += 1
        return self._failed_pings >= self.rules.hung_pings and now - self._failing_since >= self.rules.hung_after

    async def _restart(self) -> None:
        loop = asyncio.get_running_loop()
        self._restarting, self._failing_since, self._failed_pings, self._paused = True, None, 0, False
        spawned = False
        try:
            while True:
                self._attempt += 1
                await asyncio.sleep(self.rules.backoff(self._attempt))
                if not self.embedded.started:  # stopped on purpose meanwhile
                    return
                self.restarts += 1
                if self._on_restart is not None:
                    self._on_restart()
                log.warning("restarting the embedded database on 127.0.0.1:%d (attempt %d)",
                            self.embedded.port, self._attempt)
                began = loop.time()
                try:
                    self.embedded.start_process()
                except OSError as exc:
                    log.warning("could not start the embedded database: %s", type(exc).__name__)
                    continue
                spawned = True
                if await self._wait_answering():
                    spawned = False
                    self._back_at = loop.time()
                    log.warning("embedded database answers again (attempt %d, %.1f s after starting it)",
                                self._attempt, loop.time() - began)
                    return
                code = self.embedded.exit_code()
                log.warning("restarted embedded database %s; trying again",
                            _how(code) if code is not None else
                            f"did not answer within {self.rules.start_timeout:.0f} s")
                self.embedded.kill()
                spawned = False
        finally:
            self._restarting = False
            if spawned:  # abandoned while starting (shutdown): nothing was acknowledged from it yet
                self.embedded.kill()

    async def _wait_answering(self) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rules.start_timeout
        while loop.time() < deadline:
            if self.embedded.exit_code() is not None:
                return False
            if await self._answers():
                return True
            await asyncio.sleep(0.05)
        return False

    async def _answers(self) -> bool:
        """One ping on the supervisor's own connection, bounded by `ping_timeout`."""
        if self._client is None:
            ms = max(int(self.rules.ping_timeout * 1000), 100)
            self._client = AsyncMongoClient(self.embedded.uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                            socketTimeoutMS=ms, maxPoolSize=1, appname="careline-supervisor")
        try:
            await asyncio.wait_for(self._client.admin.command("ping"), self.rules.ping_timeout + 0.5)
            return True
        except (TimeoutError, PyMongoError, OSError):
            return False


__all__ = ["EmbeddedSupervisor", "Rules"]
