"""Targets: the servers the benchmark compares.

A target says (server side) how to start the server process and how to tell it is ready,
and names the load generator's client-side protocol adapter (bench/loadgen/protocols.js)
which knows the namespace, the auth payload, how a socket joins the fan-out room and how
a broadcast is triggered.  Adding a target = one entry in ``make_targets`` (+ an adapter in
protocols.js if it speaks a new protocol).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


@dataclass
class Target:
    name: str
    protocol: str  # loadgen adapter name: "bench" (reference protocol), "careline" or "carelineBench"
    description: str
    cmd: list[str]
    cwd: Path
    # env(port, redis_url or None, redis_prefix, scratch_dir) -> extra environment for the server
    env: Callable[[int, str | None, str, Path], dict]
    health_path: str = "/health"
    ready_timeout_s: float = 30.0
    requires: list[Path] = field(default_factory=list)  # files that must exist for the target to be runnable

    def unavailable(self) -> str | None:
        for p in self.requires:
            if not p.exists():
                return f"{p} not found"
        return None


def make_targets(args) -> dict[str, Target]:
    py = sys.executable

    def ref_env(port, redis_url, prefix, scratch):
        e = {"PORT": str(port), "HOST": "127.0.0.1"}
        if redis_url:
            e.update(REDIS_URL=redis_url, REDIS_PREFIX=prefix)
        return e

    careline_root = Path(args.careline_root).resolve()

    def careline_env(port, redis_url, prefix, scratch):
        e = {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "JWT_SECRET": args.jwt_secret,
            "DATA_DIR": str(scratch),
            "LOG_LEVEL": args.careline_log_level,
            # the fan-out scenarios open one group of every receiver (up to 5,000) through conversation:open
            "CHAT_GROUP_MAX_MEMBERS": "10000",
            "MAX_PAYLOAD_BYTES": str(512 * 1024),
            # storing that group (5,000 member ids in one multikey-indexed document) takes SecantusDB longer
            # than the default 2 s a request waits on one database operation
            "DEPENDENCY_TIMEOUT_MS": "30000",
            # the publisher sends up to 50 messages/s (50,000 deliveries/s to 1,000): lift the default per-user
            # limit (10/s) so the steps measure the chat path, not the limiter
            "RATE_LIMIT_BURST": "1000000",
            "RATE_LIMIT_PER_SECOND": "1000000",
        }
        if args.careline_mongodb_uri:
            e["MONGODB_URI"] = args.careline_mongodb_uri
        if redis_url:
            e["REDIS_URL"] = redis_url
        return e

    careline_transport_env = careline_env  # the same settings (rate limits lifted) plus the /bench namespace

    return {
        "node": Target(
            name="node",
            protocol="bench",
            description="Node socket.io 4 reference (bench/reference/node/server.js, defaults)",
            cmd=["node", str(BENCH_DIR / "reference/node/server.js")],
            cwd=BENCH_DIR / "reference/node",
            env=ref_env,
        ),
        "plain": Target(
            name="plain",
            protocol="bench",
            description="plain python-socketio AsyncServer + aiohttp reference (bench/reference/plain_server.py, defaults)",
            cmd=[py, str(BENCH_DIR / "reference/plain_server.py")],
            cwd=BENCH_DIR / "reference",
            env=ref_env,
        ),
        "careline": Target(
            name="careline",
            protocol="careline",
            description=f"careline (python server.py in {careline_root}), chat path /chat",
            cmd=[py, "server.py"],
            cwd=careline_root,
            env=careline_env,
            ready_timeout_s=args.careline_ready_timeout,
            requires=[careline_root / "server.py"],
        ),
        "careline-transport": Target(
            name="careline-transport",
            protocol="carelineBench",
            description=f"careline transport (bench/careline_server.py in {careline_root}: create_app + /bench namespace)",
            cmd=[py, "-m", "bench.careline_server"],  # as a module: bench/ itself must not shadow the stdlib (bench/email.py)
            cwd=careline_root,
            env=careline_transport_env,
            ready_timeout_s=args.careline_ready_timeout,
            requires=[careline_root / "server.py"],
        ),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProc:
    """One running server process (pinned with taskset), with its log file and scratch dir."""

    alive: set[ServerProc] = set()

    def __init__(self, target: Target, cpus: str | None, log_dir: Path, label: str,
                 redis_url: str | None = None, redis_prefix: str = "", snapshots_dir: Path | None = None):
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scratch = Path(tempfile.mkdtemp(prefix=f"careline-bench-{target.name}-"))
        env = dict(os.environ)
        # the server must not inherit anything that would change its behaviour between targets
        for k in ("REDIS_URL", "REDIS_PREFIX", "MONGODB_URI", "PORT", "HOST"):
            env.pop(k, None)
        env.update(target.env(self.port, redis_url, redis_prefix, self.scratch))
        if snapshots_dir is not None:
            snapshots_dir.mkdir(parents=True, exist_ok=True)
            env["BENCH_MEMORY_SNAPSHOTS"] = str(snapshots_dir / label)
        cmd = list(target.cmd)
        if cpus is not None:
            cmd = ["taskset", "-c", cpus] + cmd  # taskset execs: the pid we get is the server's
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{label}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=target.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.label = label
        self.profiler: subprocess.Popen | None = None
        ServerProc.alive.add(self)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.target.ready_timeout_s
        url = self.url + self.target.health_path
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target.name} exited with {self.proc.returncode} before becoming ready; "
                                   f"log: {self.log_path}\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.target.name} not ready after {self.target.ready_timeout_s}s ({url}); log: {self.log_path}")

    def profile(self, profile_dir: Path) -> None:
        """Sample this (ready) server with py-spy until it stops."""
        self.profiler = start_profiler(self.pid, profile_dir / f"{self.label}.txt")

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        ServerProc.alive.discard(self)
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            try:
                self.profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)  # its own session: also ends children (e.g. an embedded DB)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def start_profiler(pid: int, out: Path) -> subprocess.Popen:
    """py-spy sampling `pid` (the server, pinned; py-spy runs unpinned) into collapsed stacks at `out`."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy in the project's .venv)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking",
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
