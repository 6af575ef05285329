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
SERVER_FLAGS = ("--standalone",)


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

    def start_process(self) -> None:
        """Spawn the child (in its own session, so a terminal Ctrl-C reaches only careline)."""
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
        client: MongoClient[dict] = MongoClient(self.uri, serverSelectionTimeoutMS=int(timeout * 1000))
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
