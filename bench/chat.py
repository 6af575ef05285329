"""Chat benchmark: persisted messages in 2-member conversations, send -> message:created latency.

    python -m bench.chat [--conversations 200] [--rate 500] [--duration 30]

careline's `server.py` runs under `taskset -c 0`, the Node load generator (bench/chat_load.js) under
`taskset -c 1`, and SecantusDB (the embedded store's binary and flags) as its own process on core 1
(`--db-core`), or as the server's child on its core (`--db-core child`, as `python server.py` runs it).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import jwt

from bench import procstat
from stores.embedded import SERVER_FLAGS

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token(secret: str, sub: str) -> str:
    return jwt.encode({"sub": sub, "role": "client", "name": sub, "exp": int(time.time()) + 3600}, secret,
                      algorithm="HS256")


def _start_database(data_dir: str, core: str) -> tuple[subprocess.Popen[bytes], str]:
    """SecantusDB as its own process pinned to `core` (the server then uses it through MONGODB_URI)."""
    port = _free_port()
    executable = str(Path(sys.executable).with_name("secantusd-py"))
    process = subprocess.Popen(["taskset", "-c", core, executable, "--host", "127.0.0.1", "--port", str(port),
                                "--storage-path", str(Path(data_dir) / "db"), "--log-level", "WARNING",
                                *SERVER_FLAGS],
                               start_new_session=True, stdout=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    from pymongo import MongoClient

    MongoClient(uri, serverSelectionTimeoutMS=30_000).admin.command("ping")
    return process, uri


def _start_server(data_dir: str, secret: str, port: int, mongodb_uri: str | None = None,
                  keep_redis: bool = False, core: str = "0") -> subprocess.Popen[bytes]:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "JWT_SECRET": secret, "DATA_DIR": data_dir,
           "MESSAGE_KEYS": f"bench:{key}", "LOG_LEVEL": "WARNING", "RATE_LIMIT_BURST": "100"}
    for name in ("MONGODB_URI",) if keep_redis else ("MONGODB_URI", "REDIS_URL"):
        env.pop(name, None)
    if mongodb_uri:
        env["MONGODB_URI"] = mongodb_uri
        env.setdefault("MONGODB_POOL_SIZE", "8")  # what the embedded default uses
    process = subprocess.Popen(["taskset", "-c", core, sys.executable, "server.py"], cwd=ROOT, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("careline did not become healthy")


def _stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


LoadRun = tuple[subprocess.CompletedProcess[str], list[float]]


def _run_load(config: Path, measured: list[int], script: str = "chat_load.js",
              on_measure: Callable[[], object] | None = None) -> LoadRun:
    """Run the load generator; also the cpu seconds each measured process used while it sent measured load
    (`on_measure` is called as the measured load starts, e.g. to start a profiler)."""
    generator = subprocess.Popen(["taskset", "-c", "1", "node", str(BENCH / script), str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert generator.stderr is not None and generator.stdout is not None
    start: list[float] = []
    cpu: list[float] = []
    errors: list[str] = []
    for line in generator.stderr:
        if line.strip() == "measure:start":
            start = [procstat.cpu_seconds(pid) for pid in measured]
            if on_measure is not None:
                on_measure()
        elif line.strip() == "measure:end" and start:
            cpu = [procstat.cpu_seconds(pid) - began for pid, began in zip(measured, start)]
        else:
            errors.append(line)
    out = generator.stdout.read()
    generator.wait()
    return subprocess.CompletedProcess(generator.args, generator.returncode, out, "".join(errors)), cpu


def main() -> None:
    """Run the benchmark once and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--rate", type=int, default=500, help="messages per second, all conversations together")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--db-core", default="1",
                        help="core of the database process (default 1: the server has core 0 to itself, as with a "
                             "database on another machine); 'child' runs it as `python server.py` does, as the "
                             "server's child sharing its core 0")
    args = parser.parse_args()
    if not (BENCH / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True)
    secret, port = secrets.token_urlsafe(32), _free_port()
    print(f"cores: {os.cpu_count()}  load average before: {os.getloadavg()}  (shared machine: figures are noisy)")
    with tempfile.TemporaryDirectory() as data_dir:
        database, uri = (None, None) if args.db_core == "child" else _start_database(data_dir, args.db_core)
        server = _start_server(data_dir, secret, port, uri)
        try:
            pairs = [{"a": {"sub": f"a{i}", "token": _token(secret, f"a{i}")},
                      "b": {"sub": f"b{i}", "token": _token(secret, f"b{i}")}} for i in range(args.conversations)]
            config = Path(data_dir) / "load.json"
            config.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pairs": pairs, "rate": args.rate,
                                          "duration": args.duration, "warmup": args.warmup, "drain": 3}))
            measured = [server.pid, database.pid if database is not None else procstat.children(server.pid)[0]]
            load, cpu = _run_load(config, measured)
        finally:
            _stop(server)
            if database is not None:
                _stop(database)
    if load.returncode != 0:
        raise SystemExit(f"load generator failed: {load.stderr.strip()[-2000:]}")
    result = json.loads(load.stdout)
    print(f"load average after: {os.getloadavg()}")
    where = ("database child on the server's core 0" if args.db_core == "child"
             else f"database on core {args.db_core}")
    print(f"server on core 0, {where}, load generator on core 1")
    print(f"{result['conversations']} conversations, {result['sockets']} sockets, offered {result['offered']} msg/s "
          f"for {args.duration:g} s")
    print(f"achieved {result['achieved']:.1f} msg/s  sent {result['sent']}  received {result['received']}  "
          f"lost {result['lost']}  failed acks {result['failed']}")
    print(f"send -> message:created latency ms: p50 {result['p50']:.2f}  p90 {result['p90']:.2f}  "
          f"p99 {result['p99']:.2f}  max {result['max']:.2f}  (target p99 <= 25)")
    print("cpu per message while sending: " + ", ".join(
        f"{name} {1000 * seconds / max(result['sent'], 1):.2f} ms ({100 * seconds / args.duration:.0f} % of a core)"
        for name, seconds in zip(("server", "database"), cpu)))
    print(f"worst latency per second of sending, ms: {' '.join(map(str, result['worstPerSecond']))}")


if __name__ == "__main__":
    main()
