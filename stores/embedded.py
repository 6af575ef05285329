"""The embedded default database: SecantusDB (`secantusd-py`) as a supervised child process."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger("careline.embedded")

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the parent dies, even by SIGKILL (Linux).

    Not SIGTERM: SecantusDB's SIGTERM handler calls `Event.set()` from inside the main thread's
    `Event.wait()`, and can deadlock there (seen: an orphan with three stacked handlers blocked
    on the event's lock). Its WiredTiger log makes a kill as safe as a crash: committed writes are
    in the OS's file cache. A normal stop still sends SIGTERM first (`stop`).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # pragma: no cover - non-Linux
        pass


# Standalone: no replica-set advertisement, hence no oplog, whose extra write per written document
# only change streams and multi-document transactions would read (careline uses neither).
# Sync on commit: a commit returns only once WiredTiger's log is fsynced, so an `ok` ack means the write
# is on disk. Without it a commit may still sit in WiredTiger's log buffer: SIGKILL of the child right
# after `ok` acks lost 22 of 974 acknowledged messages. An `insert_many` is one commit (one fsync), which
# is what chat's group commit relies on (docs/storage.md, "What is durable when").
SERVER_FLAGS = ("--standalone", "--sync-on-commit")


def _executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    found = str(beside_python) if beside_python.exists() else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py is not installed: pip install SecantusDB, or set MONGODB_URI")
    return found


class EmbeddedMongo:
    """Starts, watches and stops one SecantusDB server listening on loopback."""

    def __init__(self, storage_path: Path | str, port: int | None = None) -> None:
        self.storage_path = str(storage_path)
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The connection string of the running server."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def started(self) -> bool:
        """True from `start_process` until `stop`: the child should be running (it may have died since)."""
        return self._process is not None

    def exit_code(self) -> int | None:
        """How the child ended (negative: the signal that killed it), while it is started but dead; else None."""
        return self._process.poll() if self._process is not None else None

    def paused(self) -> bool:
        """True while the child is stopped by a signal (SIGSTOP, SIGTSTP) or a tracer (Linux /proc)."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:
            return False
        return text[text.rindex(")") + 2:][:1] in ("T", "t")

    def kill(self) -> None:
        """SIGKILL the child and reap it (a hung child; its SIGTERM handler could hang as well).

        It stays `started`: `start_process` starts the next one on the same port and storage path.
        """
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def start_process(self) -> None:
        """Spawn the child (in its own session, so a terminal Ctrl-C reaches only careline).

        Always on `port` and `storage_path`, so a restarted child serves the same URI and data.
        """
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        command = [
            _executable(), "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-path", self.storage_path, "--log-level", "WARNING", *SERVER_FLAGS,
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server answers a ping; on any failure stop the child and raise."""
        ms = int(timeout * 1000)  # every wait bounded: a child that accepts and never answers fails here too
        client: MongoClient[dict] = MongoClient(self.uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                                socketTimeoutMS=ms)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            self.stop()
            raise RuntimeError(f"embedded database did not start on port {self.port}: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()
        log.info("embedded database listening on 127.0.0.1:%d (data: %s)", self.port, self.storage_path)

    def start(self, timeout: float = 30.0) -> None:
        """Start the child and wait until it answers."""
        self.start_process()
        self.wait_ready(timeout)

    async def start_async(self, timeout: float = 30.0) -> None:
        """`start` without blocking the event loop.

        The child is spawned from this (the loop's) thread: the kernel's parent-death signal follows
        the thread that forked, and a worker thread may end before the process does.
        """
        self.start_process()
        try:
            await asyncio.to_thread(self.wait_ready, timeout)
        except asyncio.CancelledError:  # the waiting thread cannot be cancelled; the child can
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded database stopped")

    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self.running and self._process else None


def default_storage(data_dir: Path) -> Path:
    """Where the embedded database keeps its files under DATA_DIR."""
    return data_dir / "db"


__all__ = ["EmbeddedMongo", "default_storage", "free_port"]
