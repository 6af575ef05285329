"""Flood isolation benchmark (not a test): one connection floods, another user's request latency is measured.

    python -m bench.flood          (starts SecantusDB and one careline process; no Redis needed)

For each flood (valid requests past the rate limit, unknown events, deep nesting, unreadable JSON, binary
junk for an unconnected namespace) it prints the victim's p50/p99 of `conversation:list` against its
baseline, what the flooder got answered, the server's log growth and RSS. Target (issue 17): the victim's
p99 stays within 2x its baseline.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

from bench.booking import SECRET, connect, spawn, token
from stores.embedded import EmbeddedMongo
from tests.conftest import wait_healthy

NS = "/chat"
VICTIM_REQUESTS = 100
FLOOD_SECONDS = 6.0
FLOODS = {
    "message:send past the limit": lambda n: f'42{NS},{n}["message:send",{{"conversationId":"c","text":"x",'
                                             f'"requestId":"r{n}"}}]',
    "unknown events": lambda n: f'42{NS},{n}["no:such:event{n % 50}",{{}}]',
    "nesting 300 deep": lambda n: f'42{NS},{n}["conversation:list",{{"a":' + "[" * 300 + "]" * 300 + "}]",
    "unreadable JSON (lone surrogate)": lambda n: f'42{NS},{n}["message:send",{{"text":"\\ud83d"}}]',
}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


async def victim_latencies(url: str) -> list[float]:
    victim = await connect(url, "victim", "client", NS)
    timings = []
    for _ in range(VICTIM_REQUESTS):
        began = time.perf_counter()
        ack = await victim.call("conversation:list", {}, namespace=NS, timeout=30)
        timings.append((time.perf_counter() - began) * 1000)
        assert ack["ok"], ack
        await asyncio.sleep(0.12)  # within the per-user limit (RATE_LIMIT_PER_SECOND = 10)
    await victim.disconnect()
    return timings


async def flood(url: str, frame: object, stop: asyncio.Event) -> Counter[str]:
    """Send frames as fast as the socket takes them; count the answers and whether we were closed."""
    answers: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http, http.ws_connect(
            url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket", max_msg_size=0) as ws:
        await ws.receive()
        await ws.send_str(f"40{NS}," + json.dumps({"token": token("flooder", "client")}))
        await ws.receive()

        async def read() -> None:
            async for message in ws:
                if isinstance(message.data, str) and message.data.startswith(f"43{NS},"):
                    body = json.loads(message.data[message.data.index("["):])[0]
                    answers["ok" if body["ok"] else body["error"]["code"]] += 1
            answers["closed by server"] += 1

        reader = asyncio.ensure_future(read())
        n = 0
        while not stop.is_set() and not ws.closed:
            n += 1
            try:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame(n))  # type: ignore[operator]
            except ConnectionError:
                break
            if n % 50 == 0:
                await asyncio.sleep(0)
        answers["sent"] = n
        reader.cancel()
    return answers


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


async def main() -> None:
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    log_path = Path(tempfile.mkdtemp(prefix="careline-flood-")) / "server.log"
    env = {"MONGODB_URI": mongo.uri, "MONGODB_DB": "flood_" + uuid.uuid4().hex[:8], "JWT_SECRET": SECRET,
           "LOG_LEVEL": "INFO", "MESSAGE_KEYS": "k1:" + "A" * 43, "DATA_DIR": str(log_path.parent)}
    with open(log_path, "wb") as log:
        url, process = spawn(env, stdout=log)
        try:
            await wait_healthy(url, process)
            baseline = await victim_latencies(url)
            print(f"cores: {os.cpu_count()}; server and clients share them (figures are noisy)")
            print(f"baseline conversation:list: p50 {statistics.median(baseline):.2f} ms, "
                  f"p99 {percentile(baseline, 99):.2f} ms, RSS {rss_mb(process.pid):.0f} MB")
            frames = {**FLOODS, "binary junk, unconnected namespace": b"\0" * 900_000}
            for name, frame in frames.items():
                log_before = log_path.stat().st_size
                stop = asyncio.Event()
                flooder = asyncio.ensure_future(flood(url, frame, stop))
                await asyncio.sleep(0.5)
                timings = await victim_latencies(url)
                stop.set()
                answers = await flooder
                grown = (log_path.stat().st_size - log_before) / 1e3
                ratio = percentile(timings, 99) / percentile(baseline, 99)
                print(f"{name}: victim p50 {statistics.median(timings):.2f} ms, p99 {percentile(timings, 99):.2f} ms "
                      f"({ratio:.2f}x baseline p99); flooder {dict(answers)}; log +{grown:.0f} KB; "
                      f"RSS {rss_mb(process.pid):.0f} MB")
        finally:
            process.terminate()
            process.wait(15)
            mongo.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
