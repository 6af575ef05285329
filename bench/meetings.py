"""Meetings benchmark (not a test): signal relay and lobby admission across two careline processes.

    python -m bench.meetings [--meetings 200] [--per-peer 20] [--duration 20]

Two careline processes (`python server.py`, on core 0) share SecantusDB and Redis, as in production; a Node
load generator (bench/meetings_load.js, on core 1) holds every peer's socket. Each meeting's host and guest
are on different processes, so every signal crosses the Redis manager. Figures: `signal` send -> receipt
p50/p99 while every peer trickles candidates at `--per-peer` signals/s, and `meeting:join` -> `lobby:admitted`
(the host admitting as soon as `lobby:waiting` arrives) p50/p99.

`--profile DIR` samples both careline processes with py-spy (`.venv/bin/pip install py-spy`) while the
measured load runs and writes DIR/process-N.txt (collapsed stacks: one stack and its sample count a line).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.chat import _free_port, _run_load, _stop, _token
from bench.chat import _start_server as _chat_server
from stores.embedded import EmbeddedMongo

BENCH = Path(__file__).resolve().parent


def _servers(data_dir: str, secret: str, uri: str, cores: list[str]) -> list[tuple[int, subprocess.Popen[bytes]]]:
    """Two careline processes on one database and one Redis."""
    os.environ.update({"REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                       "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}:", "MONGODB_DB": f"bench_{uuid.uuid4().hex[:8]}",
                       "RATE_LIMIT_BURST": "100"})
    servers = []
    for core in cores:
        port = _free_port()
        servers.append((port, _chat_server(data_dir, secret, port, uri, keep_redis=True, core=core)))
    return servers


def _profiler(directory: str | None, pids: list[int], seconds: float) -> tuple[list[subprocess.Popen[bytes]],
                                                                          Callable[[], None] | None]:
    """py-spy on each careline process for `seconds`, started by the returned callback (None: no profile)."""
    if directory is None:
        return [], None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    Path(directory).mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        started.extend(subprocess.Popen([spy, "record", "--nonblocking", "-r", "100", "--format", "raw",
                                         "-d", str(int(seconds)), "-p", str(pid), "-o",
                                         str(Path(directory) / f"process-{n + 1}.txt")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for n, pid in enumerate(pids))
    return started, start


def _redis_pid(url: str) -> int | None:
    """The pid of the Redis server at `url` when it runs on this machine (its CPU per signal is shown too)."""
    import redis

    try:
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
    except Exception:
        return None
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _therapist_token(secret: str, sub: str) -> str:
    import time

    import jwt

    return jwt.encode({"sub": sub, "role": "therapist", "name": sub, "exp": int(time.time()) + 3600}, secret,
                      algorithm="HS256")


def main() -> None:
    """Run the benchmark once and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meetings", type=int, default=200)
    parser.add_argument("--per-peer", type=float, default=20, help="signals per second each peer sends")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--join-batch", type=int, default=10, help="guests joining at once")
    parser.add_argument("--spread", action="store_true",
                        help="the second careline process on core 1 (with the load generator) instead of core 0")
    parser.add_argument("--profile", metavar="DIR", help="py-spy both careline processes during the measured load")
    args = parser.parse_args()
    if not (BENCH / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True)
    secret = "bench-" + uuid.uuid4().hex
    print(f"cores: {os.cpu_count()}  load average before: {os.getloadavg()}  (shared machine: figures are noisy)")
    with tempfile.TemporaryDirectory() as data_dir:
        mongo = EmbeddedMongo(str(Path(data_dir) / "db"))
        mongo.start()
        cores = ["0", "1"] if args.spread else ["0", "0"]
        servers = _servers(data_dir, secret, mongo.uri + "&retryWrites=false", cores)
        try:
            now = datetime.now(timezone.utc)
            meetings = [{"host": {"sub": f"t{i}", "token": _therapist_token(secret, f"t{i}")},
                         "guest": {"sub": f"c{i}", "token": _token(secret, f"c{i}")}} for i in range(args.meetings)]
            config = Path(data_dir) / "load.json"
            config.write_text(json.dumps({
                "urls": [f"http://127.0.0.1:{port}" for port, _ in servers], "meetings": meetings,
                "perPeer": args.per_peer, "duration": args.duration, "warmup": args.warmup, "drain": 3,
                "joinBatch": args.join_batch, "start": (now - timedelta(minutes=1)).isoformat(),
                "end": (now + timedelta(hours=2)).isoformat()}))
            measured = [process.pid for _, process in servers]
            redis_pid = _redis_pid(os.environ["REDIS_URL"])
            profilers, start_profile = _profiler(args.profile, measured, args.duration)
            load, cpu = _run_load(config, measured + ([redis_pid] if redis_pid else []), script="meetings_load.js",
                                  on_measure=start_profile)
            redis_cpu = cpu.pop() if redis_pid and cpu else None
            for profiler in profilers:
                profiler.wait()
        finally:
            for _, process in servers:
                _stop(process)
            mongo.stop()
    if load.returncode != 0:
        raise SystemExit(f"load generator failed: {load.stderr.strip()[-2000:]}")
    r = {key: (float("nan") if value is None else value) for key, value in json.loads(load.stdout).items()}
    print(f"load average after: {os.getloadavg()}")
    print(f"careline processes on cores {' and '.join(cores)} (database child of the bench, Redis shared), "
          "load generator on core 1")
    print(f"{r['meetings']} meetings, {r['peers']} peers, offered {r['offered']:.0f} signals/s "
          f"({args.per_peer:g} per peer) for {args.duration:g} s, every signal crossing processes")
    print(f"achieved {r['achieved']:.0f} signals/s  sent {r['sent']}  received {r['received']}  lost {r['lost']}  "
          f"failed acks {r['failed']} {r['failedCodes'] or ''}")
    print(f"signal delivery ms: p50 {r['p50']:.2f}  p99 {r['p99']:.2f}  max {r['max']:.2f}  (target p99 <= 15)")
    print(f"meeting:join -> lobby:admitted ms ({args.join_batch} guests at once): p50 {r['joinP50']:.2f}  "
          f"p99 {r['joinP99']:.2f}  max {r['joinMax']:.2f}  (target p99 <= 50)")
    print("cpu while sending: " + ", ".join(
        f"process {n + 1} {100 * seconds / args.duration:.0f} % of a core" for n, seconds in enumerate(cpu))
        + (f", Redis (shared) {100 * redis_cpu / args.duration:.0f} %" if redis_cpu is not None else ""))
    if r["received"]:
        print("cpu per delivered signal: " + ", ".join(
            f"process {n + 1} {1e6 * seconds / r['received']:.0f} µs" for n, seconds in enumerate(cpu))
            + f", together {1e6 * sum(cpu) / r['received']:.0f} µs"
            + (f"; Redis {1e6 * redis_cpu / r['received']:.0f} µs" if redis_cpu is not None else ""))
    print(f"load generator (core 1): cpu {100 * r['lgCpu']:.0f} % of a core, event-loop delay p99 "
          f"{r['lgLag99']:.1f} ms, max {r['lgLagMax']:.1f} ms"
          + ("  LOADGEN>80%: the generator may be the bottleneck" if r["lgCpu"] > 0.8 else ""))


if __name__ == "__main__":
    sys.exit(main())
