"""Stripe webhook benchmark: signed events at a fixed rate into two careline processes, 20 % duplicates.

    python -m bench.billing_webhooks [--rate 200] [--seconds 30] [--duplicates 0.2]

Starts one SecantusDB, uses Redis on 127.0.0.1:6379 (or starts redis-server), and runs two
`python server.py` processes sharing both. Every unique event is a `charge.dispute.created` for its own
session payment (seeded directly in the database), so its effect is countable: the payment's `dispute`
set and its `rev` moved exactly once. Requests are sent open-loop (on schedule, not after the previous
answer), alternating between the processes; a duplicate re-sends an earlier delivery byte for byte.

Prints: cores, load average before and after, answer latency p50/p99/max per status, the CPU each process
used during the load (% of one core: both servers, the database, this load generator), and whether every
event took effect exactly once. `--profile DIR` records py-spy's collapsed stacks of each server and the database during the load
(py-spy must be installed).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import stripe
from pymongo import AsyncMongoClient

from bench.procstat import children as child_pids
from bench.procstat import cpu_seconds
from stores.embedded import EmbeddedMongo, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench"


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def delivery(index: int) -> tuple[bytes, str]:
    """A signed `charge.dispute.created` for payment `pi_bench_<index>` (body, Stripe-Signature)."""
    event = {"id": f"evt_bench_{index}", "object": "event", "type": "charge.dispute.created",
             "created": int(time.time()), "data": {"object": {
                 "id": f"dp_bench_{index}", "object": "dispute", "payment_intent": f"pi_bench_{index}",
                 "charge": f"ch_bench_{index}", "status": "needs_response", "amount": 10000}}}
    body = json.dumps(event).encode()
    stamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{body.decode()}", SECRET)
    return body, f"t={stamp},v1={signature}"


def redis_url() -> tuple[str, subprocess.Popen[bytes] | None]:
    """Redis on 6379, else a redis-server started for the run."""
    if subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True).stdout.startswith(b"PONG"):
        return "redis://127.0.0.1:6379/0", None
    port = free_port()
    process = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", ""],
                               stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", process


async def healthy(url: str) -> None:
    """Wait for /health."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url + "/health") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def database_probe(db: Any) -> tuple[float, float]:
    """p50 and p99 of 200 single inserts (journaled, majority), to judge how busy the machine is."""
    samples = []
    for index in range(200):
        started = time.perf_counter()
        await db["probe"].insert_one({"_id": index})
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 99)


async def seed(db: Any, count: int) -> None:
    """One paid session payment per unique event."""
    now = datetime.now(timezone.utc)
    docs = [{"_id": f"b{index}", "clientId": "c0", "therapistId": "t0", "requestId": "r", "status": "paid",
             "amount": 10000, "tip": 0, "currency": "usd", "commission": 1000, "createdAt": now, "updatedAt": now,
             "intentId": f"pi_bench_{index}", "refunded": 0, "refundedTip": 0, "refundIds": [], "dispute": None,
             "disputeAt": 0, "rev": 0} for index in range(count)]
    for start in range(0, count, 2000):
        await db["billing_booking_payments"].insert_many(docs[start:start + 2000])


Timeline = list[tuple[float, float]]  # (seconds into the load the delivery was sent, its latency in ms)


async def load(urls: list[str], rate: float, seconds: float,
               duplicates: float) -> tuple[dict[int, list[float]], int, Timeline]:
    """Send rate*seconds deliveries on schedule; latencies (ms) by HTTP status, the unique count, the timeline."""
    latencies: dict[int, list[float]] = {}
    timeline: Timeline = []
    sent: list[tuple[bytes, str]] = []
    tasks = []
    total = int(rate * seconds)
    unique = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def post(url: str, body: bytes, header: str) -> None:
            started = time.perf_counter()
            async with session.post(url + "/webhooks/stripe", data=body,
                                    headers={"Stripe-Signature": header, "Content-Type": "application/json"}) as ans:
                await ans.read()
                latencies.setdefault(ans.status, []).append((time.perf_counter() - started) * 1000)
                timeline.append((started - begin, latencies[ans.status][-1]))

        begin = time.perf_counter()
        for number in range(total):
            await asyncio.sleep(max(0.0, begin + number / rate - time.perf_counter()))
            if sent and (number % int(1 / duplicates) == 0 if duplicates else False):
                body, header = sent[secrets.randbelow(len(sent))]
            else:
                body, header = delivery(unique)
                sent.append((body, header))
                unique += 1
            tasks.append(asyncio.create_task(post(urls[number % len(urls)], body, header)))
        await asyncio.gather(*tasks)
    return latencies, unique, timeline


def servers(uri: str, database: str, redis: str, data_dir: str) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Two `python server.py` processes sharing the database and Redis, Stripe webhooks configured."""
    processes, urls = [], []
    for _ in range(2):
        port = free_port()
        env = {**os.environ, "MONGODB_URI": uri, "MONGODB_DB": database, "REDIS_URL": redis,
               "REDIS_PREFIX": f"{database}:", "PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": data_dir,
               "LOG_LEVEL": "WARNING", "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": "http://127.0.0.1:9",
               "STRIPE_WEBHOOK_SECRET": SECRET, "JWT_SECRET": "bench-" + "x" * 40}
        processes.append(subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env))
        urls.append(f"http://127.0.0.1:{port}")
    return processes, urls


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def profilers(pids: dict[str, int], directory: str | None, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each server and the database for the load's duration (collapsed stacks into `directory`)."""
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                              "--nonblocking", "--format", "raw", "--output", f"{directory}/{name.replace(' ', '')}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items() if name != "load generator"]


async def main(rate: float, seconds: float, duplicates: float, profile: str | None) -> int:
    """Run the load once against two processes and check the effects."""
    load_before = os.getloadavg()
    mongo = EmbeddedMongo(":memory:")
    await mongo.start_async()
    redis, redis_process = redis_url()
    uri = mongo.uri + "&retryWrites=false"
    database = f"bench_billing_{secrets.token_hex(3)}"
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, tz_aware=True, w="majority", journal=True)
    total_unique = int(rate * seconds) + 10
    probe = await database_probe(client[database])
    await seed(client[database], total_unique)
    with tempfile.TemporaryDirectory() as data_dir:
        processes, urls = servers(uri, database, redis, data_dir)
        try:
            for url in urls:
                await healthy(url)
            pids = {"server 1": processes[0].pid, "server 2": processes[1].pid, "load generator": os.getpid(),
                    "database": database_pid(os.getpid(), processes)}
            spies = profilers(pids, profile, seconds)
            cpu_start, started = cpu_of(pids), time.perf_counter()
            latencies, unique, timeline = await load(urls, rate, seconds, duplicates)
            cpu_loaded, loaded = cpu_of(pids), time.perf_counter()
            db = client[database]
            await until_applied(db, unique)
            cpu_end, drained = cpu_of(pids), time.perf_counter()
            for spy in spies:
                spy.wait(30)
            report(latencies, unique, rate, seconds, duplicates)
            print("  p99 per 5 s of the load (ms): " + ", ".join(
                f"{percentile([ms for at, ms in timeline if start <= at < start + 5], 99):.0f}"
                for start in range(0, int(seconds), 5)))
            print(f"  machine state: {os.cpu_count()} cores, load average {load_before[0]:.2f} before the run, "
                  f"{os.getloadavg()[0]:.2f} after; one insert into the database before the run took "
                  f"p50 {probe[0]:.2f} ms, p99 {probe[1]:.2f} ms (unloaded machine: ~0.4 ms)")
            print("  CPU (% of one core) during the load / until every event was applied: " + ", ".join(
                f"{name} {(cpu_loaded[name] - cpu_start[name]) / (loaded - started):.0%} / "
                f"{(cpu_end[name] - cpu_start[name]) / (drained - started):.0%}" for name in pids))
            print(f"  every event applied {drained - loaded:.1f} s after the last answer")
            return await check(db, unique)
        finally:
            for process in processes:
                process.terminate()
                process.wait(15)
            await client.close()
            mongo.stop()
            if redis_process is not None:
                redis_process.terminate()


def database_pid(parent: int, servers: list[subprocess.Popen[bytes]]) -> int:
    """The database's pid: this process's SecantusDB child."""
    known = {process.pid for process in servers}
    return next(pid for pid in child_pids(parent)
                if pid not in known and "secantus" in Path(f"/proc/{pid}/cmdline").read_text())


async def until_applied(db: Any, unique: int) -> None:
    """Wait until every unique event is applied, or nothing moved for 20 s."""
    last, still = -1, time.monotonic()
    while (applied := await db["billing_webhook_events"].count_documents({"applied": True})) < unique:
        if applied != last:
            last, still = applied, time.monotonic()
        elif time.monotonic() - still > 20:
            return
        await asyncio.sleep(0.5)


def report(latencies: dict[int, list[float]], unique: int, rate: float, seconds: float, duplicates: float) -> None:
    """Print the latency figures."""
    print(f"cores: {os.cpu_count()}; load: {rate:.0f} signed events/s for {seconds:.0f} s, {duplicates:.0%} "
          f"duplicates, alternating over 2 server processes (one SecantusDB, one Redis)")
    every = [value for values in latencies.values() for value in values]
    for status, values in sorted(latencies.items()):
        print(f"  HTTP {status}: {len(values)} answers")
    print(f"  answer latency: p50 {statistics.median(every):.1f} ms, p99 {percentile(every, 99):.1f} ms, "
          f"max {max(every):.1f} ms; unique events {unique}")


async def check(db: Any, unique: int) -> int:
    """Every unique event stored once and applied once: its payment's dispute set, its rev moved once."""
    stored = await db["billing_webhook_events"].count_documents({})
    applied = await db["billing_webhook_events"].count_documents({"applied": True})
    effected = await db["billing_booking_payments"].count_documents({"dispute": "needs_response", "rev": 1})
    twice = await db["billing_booking_payments"].count_documents({"rev": {"$gt": 1}})
    print(f"  inbox: {stored} stored, {applied} applied; effects: {effected} payments flagged once, "
          f"{twice} flagged more than once")
    ok = stored == applied == effected == unique and twice == 0
    print("  exactly once: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


def run() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--profile", metavar="DIR", help="py-spy stacks of both servers and the database into DIR")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.rate, args.seconds, args.duplicates, args.profile)))


if __name__ == "__main__":
    run()
