"""Worksheets benchmark (not a test): live editing load across two processes, and opening a long document.

    python -m bench.worksheets            (needs redis-server on the PATH and `npm ci` in bench/)

1. 100 assignments, each with 3 Yjs editors (the client on two devices and the therapist; official `yjs` and
   `socket.io-client` in one Node process, bench/worksheets_load.mjs) typing 10 updates/s each, spread over two
   careline processes sharing the database and Redis: `doc:update` ack p99 and relay p99 (targets <= 25 ms).
2. One document with 10,000 stored updates: `assignment:open` before and after compaction (target <= 50 ms
   after). The updates are real Yjs updates appended through careline's own DocumentStore.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import socketio
from pycrdt import Doc, Map, Text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procstat import cpu_seconds  # noqa: E402
from clock import utcnow  # noqa: E402
from config import Config  # noqa: E402
from handlers.auth import mint_token  # noqa: E402
from stores.crypto import Cipher  # noqa: E402
from stores.embedded import EmbeddedMongo, free_port  # noqa: E402
from stores.mongo import connect as mongo_connect  # noqa: E402
from stores.worksheets.documents import DocumentStore  # noqa: E402
from tests.conftest import wait_healthy  # noqa: E402 - the same readiness probe as the tests

SECRET = "bench-secret-" + "x" * 32
KEYS = "k1:" + "A" * 43
FIELDS = [{"id": "story", "type": "text", "label": "Story"}, {"id": "mood", "type": "choice", "label": "Mood",
                                                                "options": ["low", "ok", "good"]}]


def token(sub: str, role: str) -> str:
    return mint_token(Config.from_env({"JWT_SECRET": SECRET}), sub, role, sub, 7200)


async def connect(url: str, sub: str, role: str, namespace: str) -> socketio.AsyncClient:
    for attempt in range(5):  # a busy shared machine can miss a connect deadline
        client = socketio.AsyncClient(reconnection=False)
        try:
            await client.connect(url, namespaces=[namespace], auth={"token": token(sub, role)},
                                 transports=["websocket"], wait_timeout=10)
            return client
        except socketio.exceptions.ConnectionError:
            if attempt == 4:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def ok(client: socketio.AsyncClient, namespace: str, event: str, data: dict[str, Any]) -> Any:
    ack = await client.call(event, data, namespace=namespace, timeout=60)
    assert ack["ok"], (event, ack)
    return ack["data"]


def spawn(env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = str(free_port())
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT,
                               env={**os.environ, **env, "PORT": port, "HOST": "127.0.0.1"})
    return f"http://127.0.0.1:{port}", process


async def pair(url: str, n: int) -> str:
    """Therapist bt<n> and client bc<n> with a conversation, a worksheet and an assignment; its id."""
    client = await connect(url, f"bc{n}", "client", "/chat")
    chat = await connect(url, f"bt{n}", "therapist", "/chat")
    await ok(chat, "/chat", "conversation:open", {"memberIds": [f"bc{n}"]})
    therapist = await connect(url, f"bt{n}", "therapist", "/worksheets")
    sheet = await ok(therapist, "/worksheets", "worksheet:create", {"title": "Diary", "fields": FIELDS,
                                                                   "requestId": f"w{n}"})
    assignment = await ok(therapist, "/worksheets", "worksheet:assign", {"worksheetId": sheet["id"],
                                                                        "clientId": f"bc{n}", "requestId": f"a{n}"})
    for each in (client, chat, therapist):
        await each.disconnect()
    return str(assignment["id"])


def profile(pids: list[int], seconds: int, into: str) -> list[subprocess.Popen[bytes]]:
    """py-spy (`pip install py-spy`) sampling each server and SecantusDB for `seconds` while it holds the GIL (its
    CPU time, not its waits): collapsed stacks into `into`/server0.txt, server1.txt and database.txt."""
    Path(into).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--gil",
                              "--format", "raw", "--output", f"{into}/{name}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in zip(("server0", "server1", "database"), pids, strict=False)]


async def editing_load(urls: list[str], assignments: int, rate: float, seconds: int,
                       pids: list[int], profile_into: str | None = None, edit_updates: bool = False) -> dict[str, Any]:
    """Seed the assignments, run the Node editors; their figures plus each pid's CPU seconds while measured."""
    ids: list[str] = []
    for chunk in range(0, assignments, 10):
        ids += await asyncio.gather(*(pair(urls[n % 2], n) for n in range(chunk, min(assignments, chunk + 10))))
    editors = []
    for n, assignment_id in enumerate(ids):
        for k, (sub, role) in enumerate(((f"bc{n}", "client"), (f"bc{n}", "client"), (f"bt{n}", "therapist"))):
            editors.append({"url": urls[(n + k) % 2], "token": token(sub, role), "assignmentId": assignment_id})
    config = json.dumps({"editors": editors, "rate": rate, "seconds": seconds, "warmup": 5,
                         "editUpdates": edit_updates})
    done = await asyncio.create_subprocess_exec("node", str(ROOT / "bench" / "worksheets_load.mjs"), config,
                                                cwd=ROOT / "bench", stdout=asyncio.subprocess.PIPE)
    assert done.stdout is not None
    marks: dict[str, list[float]] = {}
    spies: list[subprocess.Popen[bytes]] = []
    report: dict[str, Any] = {}
    async for line in done.stdout:
        data = json.loads(line)
        if "phase" in data:
            marks[data["phase"]] = [time.monotonic()] + [cpu_seconds(pid) for pid in [*pids, done.pid]]
            if data["phase"] == "measuring" and profile_into:
                spies = profile(pids[:3], seconds, profile_into)
        else:
            report = data
    await done.wait()
    for spy in spies:
        spy.wait()
    start, stop = marks["measuring"], marks["stopped"]
    report["wall"] = stop[0] - start[0]
    report["cpu"] = [after - before for before, after in zip(start[1:], stop[1:])]
    return report


async def long_document(urls: list[str], env: dict[str, str], updates: int) -> tuple[list[float], list[float], int]:
    """Open times (ms) of a document with `updates` logged updates, before and after compaction."""
    assignment_id = await pair(urls[0], 10_000)
    reader = await connect(urls[1], "bt10000", "therapist", "/worksheets")
    opened = await ok(reader, "/worksheets", "assignment:open", {"assignmentId": assignment_id})
    doc = Doc()
    doc.apply_update(base64.b64decode(opened["update"]))
    text = doc.get("responses", type=Map)["story"]
    assert isinstance(text, Text)
    client = mongo_connect(env["MONGODB_URI"], write_concern="1", retry_writes=False)
    store = DocumentStore(client[env["MONGODB_DB"]], Cipher(Config.from_env({"JWT_SECRET": SECRET,
                                                                              "MESSAGE_KEYS": KEYS}).message_keys))
    made = []
    for n in range(updates):
        before = doc.get_state()
        if len(str(text)) > 2000:
            del text[0:10]
        else:
            text.insert(len(str(text)) // 2, "ab"[n % 2])
        made.append(doc.get_update(before))
    for chunk in range(0, updates, 200):
        await asyncio.gather(*(store.append(assignment_id, update, utcnow()) for update in made[chunk:chunk + 200]))

    async def open_times(rounds: int) -> list[float]:
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            await ok(reader, "/worksheets", "assignment:open", {"assignmentId": assignment_id})
            times.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.5)  # assignment:open is rate-limited to 2/s per user
        return times

    uncompacted = await open_times(5)
    deadline = time.monotonic() + 120
    while await store.log_length(assignment_id) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)  # the scheduler's idle compaction (defaults: idle 30 s, tick 10 s)
    left = await store.log_length(assignment_id)
    compacted = await open_times(20)
    await reader.disconnect()
    await client.close()
    return uncompacted, compacted, left


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignments", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="updates per second per editor")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--updates", type=int, default=10_000,
                        help="stored updates of the long document (0: skip that part)")
    parser.add_argument("--edit-updates", action="store_true",
                        help="editors send the update of each edit (yjs's `update` event, as providers do) instead of "
                             "encodeStateAsUpdate against the state before it (which repeats the whole delete set)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the servers while measured (raw stacks into DIR)")
    args = parser.parse_args()
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    redis_port = free_port()  # a Redis of its own: a shared one carries other people's load
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",  # noqa: ASYNC220
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    env = {"MONGODB_URI": mongo.uri + "&retryWrites=false", "MONGODB_DB": "bench_" + uuid.uuid4().hex[:8],
           "JWT_SECRET": SECRET, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LOG_LEVEL": "WARNING", "REDIS_PREFIX": "bench:" + uuid.uuid4().hex[:8] + ":", "MESSAGE_KEYS": KEYS,
           "DATA_DIR": tempfile.mkdtemp(prefix="careline-bench-worksheets-")}
    servers = [spawn(env) for _ in range(2)]
    try:
        await asyncio.gather(*(wait_healthy(url, process) for url, process in servers))
        urls = [url for url, _ in servers]
        pids = [process.pid for _, process in servers] + [mongo.pid() or 0, redis.pid]
        load = await editing_load(urls, args.assignments, args.rate, args.seconds, pids, args.profile,
                                  args.edit_updates)
        wall, busy = load["wall"], [100 * cpu / load["wall"] for cpu in load["cpu"]]
        per_update = [1000 * cpu / max(1, load["acks"]) for cpu in load["cpu"]]
        print(f"cores: {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared "
              f"machine: figures are noisy; servers, database and Node load share them)")
        print(f"editing: {args.assignments} assignments x 3 Yjs editors x {args.rate:g} updates/s, 2 processes, "
              f"{'edit updates' if args.edit_updates else 'encodeStateAsUpdate updates'}, "
              f"{load['seconds']} s measured: {load['acks']} acks, {load['relays']} relays, {load['refused']} refused "
              f"{load['codes'] or ''} (of {load['sent']} sent, warm-up included)")
        print(f"  doc:update ack   p50 {ms(load['ackP50'])}, p99 {ms(load['ackP99'])}, max {ms(load['ackMax'])}"
              f" (target p99 <= 25 ms)")
        print(f"  doc:updated relay p50 {ms(load['relayP50'])}, p99 {ms(load['relayP99'])}, "
              f"max {ms(load['relayMax'])} (target p99 <= 25 ms)")
        print(f"  cpu while measured ({wall:.0f} s): servers {busy[0]:.0f}% and {busy[1]:.0f}%, "
              f"database {busy[2]:.0f}%, redis {busy[3]:.0f}%, node load generator {busy[4]:.0f}% of one core")
        print(f"  cpu per acknowledged update: servers {per_update[0]:.2f} + {per_update[1]:.2f} ms, "
              f"database {per_update[2]:.2f} ms, redis {per_update[3]:.2f} ms, node load generator "
              f"{per_update[4]:.2f} ms; all {sum(per_update):.2f} ms", flush=True)
        if not args.updates:
            return
        uncompacted, compacted, left = await long_document(urls, env, args.updates)
        print(f"open, {args.updates} stored updates, not compacted: p50 {statistics.median(uncompacted):.1f} ms")
        print(f"open after compaction ({left} left in the log): p50 {statistics.median(compacted):.1f} ms, "
              f"p99 {p99(compacted):.1f} ms (target <= 50 ms)")
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        mongo.stop()
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
