"""Email queue benchmark (not a test): 10,000 queued emails drained by careline workers into a real SMTP server.

    python -m bench.email [--emails 10000] [--workers 1 2]

Starts SecantusDB and an aiosmtpd server in this process, uses Redis on 127.0.0.1:6379, runs `python server.py
worker` processes, then seeds `email_outbox` with one item per user (no digest combines them), all due at one
moment just after seeding ends, which the workers' `notifications-email` job then drains. Prints emails/s
(first to last delivery) and due-to-delivered p50/p99 per run, with the CPU seconds each process used.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.booking import SECRET  # noqa: E402
from bench.procstat import cpu_seconds  # noqa: E402
from stores.embedded import EmbeddedMongo, free_port  # noqa: E402
from stores.mongo import connect as mongo_connect  # noqa: E402
from stores.notifications.email import slot_of  # noqa: E402


class Arrivals:
    """An aiosmtpd handler noting when each email arrived (its subject names the queue item)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        for line in envelope.content.decode(errors="replace").splitlines():
            if line.startswith("Subject: Bench "):
                self.at[line.removeprefix("Subject: Bench ").strip()] = time.time()
                break
        return "250 OK"


async def seed(uri: str, database: str, count: int) -> float:
    """`count` emails, one per user, all due at one moment after they are stored (so the workers do not drain
    a queue still being filled); returns that moment (epoch seconds), which latencies count from."""
    client = mongo_connect(uri, timeout_ms=120_000, retry_writes=False)
    db = client[database]
    now = datetime.now(UTC)
    due = now + timedelta(seconds=2 + count / 1000)  # seeding stores ~2,000 documents a second
    await db["users"].insert_many([{"_id": f"u{n}", "role": "client", "tokenEmail": f"u{n}@bench.example"}
                                   for n in range(count)])
    await db["email_outbox"].insert_many([
        {"_id": f"n{n}", "userId": f"u{n}", "category": "booking", "critical": False, "title": f"Bench {n}",
         "body": "Tue 03 Mar 2026, 10:00 UTC", "state": "queued", "slot": slot_of(f"u{n}"), "dueAt": due,
         "tries": 0, "createdAt": now} for n in range(count)])
    await client.close()
    if datetime.now(UTC) > due:
        print(f"    (seeding overran the due time by {(datetime.now(UTC) - due).total_seconds():.1f} s)")
    return due.timestamp()


async def run(count: int, workers: int, mongo: EmbeddedMongo, smtp_port: int, profile: str | None = None) -> None:
    arrivals = Arrivals()
    controller = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    database = "email_" + uuid.uuid4().hex[:8]
    env = {**os.environ, "MONGODB_URI": mongo.uri, "MONGODB_DB": database, "JWT_SECRET": SECRET,
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
           "REDIS_PREFIX": f"bench:{database}:", "MESSAGE_KEYS": "k1:" + "A" * 43, "LOG_LEVEL": "WARNING",
           "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "EMAIL_TICK_SECONDS": "0.05", "WORKER_PORT": "0",
           "DATA_DIR": tempfile.mkdtemp(prefix="careline-bench-email-")}
    # the workers build their indexes first, then the queue is filled at once
    profiler = ["-m", "cProfile", "-o"] if profile else []
    processes = [await asyncio.create_subprocess_exec(
        sys.executable, *profiler, *([f"{profile}/worker{workers}-{n}.prof"] if profile else []), "server.py",
        "worker", cwd=ROOT, env=env) for n in range(workers)]
    try:
        await asyncio.sleep(3)
        pids = {"database": mongo.pid() or 0, "workers": 0}
        before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
        before["workers"] = sum(cpu_seconds(process.pid) for process in processes)
        before["bench (aiosmtpd)"] = cpu_seconds(os.getpid())
        queued = await seed(mongo.uri, database, count)
        deadline = time.time() + 600
        while len(arrivals.at) < count and time.time() < deadline:  # noqa: ASYNC110 - aiosmtpd fills it in its thread
            await asyncio.sleep(0.2)
        latencies = sorted((at - queued) * 1000 for at in arrivals.at.values())
        span = max(arrivals.at.values()) - min(arrivals.at.values()) if arrivals.at else 0.0
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else float("nan")
        print(f"{workers} worker process(es): {len(arrivals.at)}/{count} delivered, "
              f"{len(arrivals.at) / span if span else float('nan'):.0f} emails/s; enqueue-to-delivered "
              f"p50 {statistics.median(latencies) / 1000:.1f} s, p99 {p99 / 1000:.1f} s")
        after = {"database": cpu_seconds(pids["database"]) if pids["database"] else 0.0,
                 "workers": sum(cpu_seconds(process.pid) for process in processes),
                 "bench (aiosmtpd)": cpu_seconds(os.getpid())}
        print(f"    first email {min(arrivals.at.values()) - queued:.2f} s after the queue came due; CPU seconds "
              f"from seeding to the last delivery: " + ", ".join(f"{name} {after[name] - before[name]:.1f}" for name in after))
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)  # the worker stops cleanly (a profile is written)
        for process in processes:
            await asyncio.wait_for(process.wait(), 15)
        controller.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description="careline email queue benchmark")
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", default=None, help="a folder: run the workers under cProfile, one file each")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; aiosmtpd in the bench process, SecantusDB, Redis; load {os.getloadavg()[0]:.1f}")
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    try:
        for workers in args.workers:
            await run(args.emails, workers, mongo, free_port(), args.profile)
    finally:
        mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())
