"""Restart storm (issue 18): two careline processes behind Redis on one database, 10,000 socket.io-client clients
with chat and notification traffic; one process is SIGKILLed and restarted on its port.

    python -m bench --scenarios storm            (or: python -m bench.storm [--storm-clients N ...])

Reported (figures in the run's JSON under scenarios.storm.careline): time from the kill until 99 % and 100 % of
the killed process's clients are connected again (both namespaces) and until they have caught up by seq
(`message:history {afterSeq}`, `notification:list {afterSeq}`), connect errors by reason, clients refused more
than once after the restarted process answered /health (more than one backoff step), acknowledged messages a
member lacks after catch-up or the database lacks, peak CPU and RSS of the surviving and the restarted process,
and the load generators' CPU (they must not be the bottleneck).
"""
from __future__ import annotations

import base64
import json
import math
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import jwt

from bench import procstat
from bench.chat import _free_port, _start_database, _stop
from bench.targets import start_profiler

BENCH = Path(__file__).resolve().parent
LOAD = BENCH / "storm_load.js"
KILLED = 1  # the index of the process that is killed and restarted


def add_args(parser) -> None:
    g = parser.add_argument_group("restart storm (storm, only on request)")
    g.add_argument("--storm-clients", type=int, default=10000, help="clients, one WebSocket each (default 10000)")
    g.add_argument("--storm-conversation-size", type=int, default=10,
                   help="members per group conversation: a therapist, a lurker and the rest (default 10)")
    g.add_argument("--storm-rate", type=float, default=100.0, help="messages/s sent in total (default 100)")
    g.add_argument("--storm-warmup", type=float, default=10.0, help="seconds of traffic before the kill (default 10)")
    g.add_argument("--storm-observe", type=float, default=45.0, help="seconds of traffic after the kill (default 45)")
    g.add_argument("--storm-loadgens", type=int, default=4, help="Node load-generator processes (default 4)")
    g.add_argument("--storm-transports", default="websocket",
                   help="socket.io-client transports (default websocket; 'polling,websocket' is the client's default)")
    g.add_argument("--storm-server-cpus", default="0,1",
                   help="cpu of each careline process, the second is killed (default 0,1: a core each)")
    g.add_argument("--storm-db-cpu", default="0,1", help="cpus of the database process (default 0,1: either)")
    g.add_argument("--storm-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for both careline processes (e.g. CONNECT_ADMISSION_PER_SECOND=500)")


class Lines(threading.Thread):
    """A load generator's stdout, one parsed JSON message at a time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc, self.messages = proc, queue.Queue[dict]()
        self.start()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                print(f"[storm] loadgen: {line.rstrip()}", file=sys.stderr)
        self.messages.put({"type": "eof"})

    def expect(self, kind: str, timeout: float) -> dict:
        msg = self.messages.get(timeout=timeout)
        if msg["type"] != kind:
            raise RuntimeError(f"load generator: expected {kind}, got {str(msg)[:2000]}")
        return msg


class Sampler(threading.Thread):
    """CPU seconds and RSS of the careline processes (by slot: the restarted one changes pid) every 0.5 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.samples, self.halt = pids, [], threading.Event()
        self.start()

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.time()
            self.samples.append({"t": now, **{slot: {"pid": pid, **procstat.sample(pid)}
                                             for slot, pid in list(self.pids.items())}})
            self.halt.wait(0.5)


class Careline:
    """One careline process on a fixed port (the restarted one keeps it)."""

    def __init__(self, env: dict[str, str], cpu: str, log: Path) -> None:
        self.env, self.cpu, self.log, self.port = env, cpu, log, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(["taskset", "-c", self.cpu, sys.executable, "server.py"], cwd=BENCH.parent,
                                         env={**self.env, "PORT": str(self.port)}, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"careline exited {self.proc.returncode}; log {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return time.time()
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"careline not ready after {timeout}s; log {self.log}")


def _token(secret: str, sub: str, role: str) -> str:
    return jwt.encode({"sub": sub, "role": role, "name": sub, "exp": int(time.time()) + 7200}, secret, algorithm="HS256")


def plan(args, secret: str, urls: list[str]) -> list[dict]:
    """One config per load generator: its conversations and their members, spread over both processes."""
    size = args.storm_conversation_size
    configs = [{"index": p, "urls": urls, "transports": args.storm_transports.split(","), "clients": [],
                "conversations": [], "rate": args.storm_rate / args.storm_loadgens, "runId": args.run_id}
               for p in range(args.storm_loadgens)]
    for k in range(args.storm_clients // size):
        cfg = configs[k % args.storm_loadgens]
        base = len(cfg["clients"])
        for m in range(size):
            role = "therapist" if m == 0 else "client"
            cfg["clients"].append({"sub": f"storm-{k}-{m}", "token": _token(secret, f"storm-{k}-{m}", role),
                                   "server": (k + m) % 2})
        cfg["conversations"].append({"therapist": base, "members": list(range(base + 1, base + size - 1)),
                                     "lurker": base + size - 1})
    return configs


def run(args, workdir: Path) -> dict:
    """The whole scenario: start, load, kill, restart, observe, verify; returns the figures."""
    secret = secrets.token_hex(32)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    data = Path(tempfile.mkdtemp(prefix="careline-storm-"))
    db, uri = _start_database(str(data), args.storm_db_cpu)
    prefix = f"careline-storm-{args.run_id}-{os.getpid()}:"
    env = {**{k: v for k, v in os.environ.items() if k not in ("PORT", "HOST")}, "HOST": "127.0.0.1",
           "JWT_SECRET": secret, "DATA_DIR": str(data), "MESSAGE_KEYS": f"bench:{key}", "LOG_LEVEL": "WARNING",
           "MONGODB_URI": uri, "MONGODB_POOL_SIZE": "8", "MONGODB_DB": f"storm_{args.run_id.replace('-', '_')}",
           "REDIS_URL": args.redis_url, "REDIS_PREFIX": prefix}
    env.update(kv.split("=", 1) for kv in args.storm_env)
    servers: list[Careline] = []
    loadgens: list[subprocess.Popen[str]] = []
    sampler = None
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        cpus = args.storm_server_cpus.split(",")
        servers = [Careline(env, cpus[i % len(cpus)], workdir / f"storm-careline-{i}.log") for i in range(2)]
        for s in servers:
            s.wait_ready()
        configs = plan(args, secret, [s.url for s in servers])
        lines = []
        for cfg in configs:
            path = workdir / f"storm-load-{cfg['index']}.json"
            path.write_text(json.dumps(cfg))
            proc = subprocess.Popen(["taskset", "-c", args.loadgen_cpu, "node", str(LOAD), str(path)], cwd=BENCH,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            loadgens.append(proc)
            lines.append(Lines(proc))
        t_setup = time.time()
        for ln in lines:
            ln.expect("connected", 900)
        connected_s = time.time() - t_setup
        for ln in lines:
            ln.expect("ready", 900)
        sampler = Sampler({"survivor": servers[1 - KILLED].proc.pid, "killed": servers[KILLED].proc.pid,
                           "database": db.pid})
        lg_cpu0 = [procstat.cpu_seconds(p.pid) for p in loadgens]
        t_traffic = time.time()
        _tell(loadgens, "traffic")
        time.sleep(args.storm_warmup)
        victim = servers[KILLED]
        kill_at = time.time()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        victim.start()
        sampler.pids["killed"] = victim.proc.pid
        if args.profile:
            profilers += [start_profiler(victim.proc.pid, workdir / "profiles" / "storm-restarted.txt"),
                          start_profiler(servers[1 - KILLED].proc.pid, workdir / "profiles" / "storm-survivor.txt"),
                          start_profiler(db.pid, workdir / "profiles" / "storm-database.txt")]
        ready_at = victim.wait_ready()
        time.sleep(max(0.0, kill_at + args.storm_observe - time.time()))
        _tell(loadgens, "stop")
        lg_cpu = [procstat.cpu_seconds(p.pid) - c for p, c in zip(loadgens, lg_cpu0)]
        lg_wall = time.time() - t_traffic
        results = [ln.expect("result", 300) for ln in lines]
    finally:
        if sampler is not None:
            sampler.halt.set()
        for spy in profilers:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(timeout=30)
        for p in loadgens:
            _end(p)
        for s in servers:
            if s.proc.poll() is None:
                _stop(s.proc)
        _stop(db)
        _forget_redis(args.redis_url, prefix)
    out = summarize(results, kill_at, ready_at, sampler.samples, args)
    out.update(connectSetupS=connected_s, restartReadyS=ready_at - kill_at,
               loadgenCpuPct=[100 * c / lg_wall for c in lg_cpu], transports=args.storm_transports,
               serverEnv=args.storm_env, clients=args.storm_clients, loadgens=args.storm_loadgens,
               rate=args.storm_rate, observeS=args.storm_observe)
    return out


def _tell(procs: list[subprocess.Popen[str]], line: str) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(line + "\n")
        p.stdin.flush()


def _end(proc: subprocess.Popen[str]) -> None:
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _forget_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for k in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(k)
    finally:
        client.close()


def quantile_time(times: list[float], q: float) -> float | None:
    """The time by which a fraction q of the clients were back; None when fewer than that ever were."""
    return times[math.ceil(q * len(times)) - 1] if times else None


def summarize(results: list[dict], kill_at_s: float, ready_at_s: float, samples: list[dict], args) -> dict:
    kill_at, ready_at = kill_at_s * 1000, ready_at_s * 1000
    clients = [c for r in results for c in r["clients"]]
    victims = [c for c in clients if c["server"] == KILLED]
    survivors_dropped = sum(1 for c in clients if c["server"] != KILLED and (c["disconnectAt"] or 0) >= kill_at)

    def after_kill(field: str) -> list[float]:
        return sorted((c[field] - kill_at) / 1000 for c in victims if c[field] is not None and c[field] >= kill_at)

    back, caught = after_kill("reconnectAt"), after_kill("caughtUpAt")
    n = len(victims)
    errors: dict[str, int] = {}
    refused_after_ready: dict[str, int] = {}
    for c in victims:
        for t, reason in c["errors"]:
            errors[reason] = errors.get(reason, 0) + 1
            if t >= ready_at:
                refused_after_ready[reason] = refused_after_ready.get(reason, 0) + 1
    refusals = [sum(1 for t, _ in c["errors"] if t >= ready_at) for c in victims]
    attempts: dict[str, int] = {}
    for c in victims:
        attempts[str(c["attempts"])] = attempts.get(str(c["attempts"]), 0) + 1
    total = lambda key: sum(r[key] for r in results)  # noqa: E731
    merged: dict[str, dict[str, int]] = {"ackFailures": {}, "nsErrors": {}, "catchUpErrors": {}}
    for r in results:
        for key in merged:
            for reason, k in r[key].items():
                merged[key][reason] = merged[key].get(reason, 0) + k
    return {
        "victims": n, "reconnected": len(back), "caughtUp": len(caught),
        "reconnect99S": quantile_time(back, 0.99) if len(back) >= math.ceil(0.99 * n) else None,
        "reconnect100S": back[-1] if len(back) == n else None,
        "caughtUp99S": quantile_time(caught, 0.99) if len(caught) >= math.ceil(0.99 * n) else None,
        "caughtUp100S": caught[-1] if len(caught) == n else None,
        "reconnectCurveS": [round(t, 3) for t in back], "caughtUpCurveS": [round(t, 3) for t in caught],
        "connectErrors": errors, "refusalsAfterReady": refused_after_ready,
        "refusedMoreThanOneStep": sum(1 for k in refusals if k > 1), "reconnectAttempts": attempts,
        "namespaceErrors": merged["nsErrors"], "catchUpErrors": merged["catchUpErrors"], "survivorClientsDropped": survivors_dropped,
        "sent": total("sent"), "acked": total("acked"), "skippedOffline": total("skippedOffline"),
        "ackFailures": merged["ackFailures"], "lostAcked": total("missingMessages"),
        "missingDeliveries": total("missingDeliveries"), "notStored": total("notStored"),
        "missingAtClientsStillCatchingUp": total("stillCatchingUp"),
        "lurkersWithoutNotifications": total("lurkersWithoutNotifications"),
        "notificationsReceived": sum(c["notifications"] for c in clients),
        "servers": peaks(samples, kill_at_s),
        "flags": flags(back, caught, n, refusals, total("missingMessages") + total("notStored")),
    }


def peaks(samples: list[dict], kill_at: float) -> dict:
    """Peak CPU (% of a core over 1 s windows) and RSS per slot, from the kill on; the killed slot only after restart."""
    out = {}
    for slot in ("survivor", "killed", "database"):
        since = kill_at - 1 if slot == "survivor" else kill_at
        series = [(s["t"], s[slot]) for s in samples if s["t"] >= since and s[slot].get("cpu_s") is not None]
        cpu = [100 * (b["cpu_s"] - a["cpu_s"]) / (tb - ta) for (ta, a), (tb, b) in zip(series, series[2:])
               if a["pid"] == b["pid"] and tb > ta]
        out[slot] = {"peakCpuPct": max(cpu, default=None), "peakRssMB": max((s["rss"] for _, s in series), default=0) / 2**20,
                     "cpuPct": [(round(tb - kill_at, 2), round(c, 1)) for (tb, _), c in zip(series[2:], cpu)]}
    return out


def flags(back: list[float], caught: list[float], n: int, refusals: list[int], lost: int) -> list[str]:
    out = []
    if len(back) < n or (back and back[-1] > 30):
        out.append("RECONNECT>30s")
    if len(caught) < n or (caught and caught[-1] > 30):
        out.append("CATCH-UP>30s")
    if any(k > 1 for k in refusals):
        out.append("REFUSED>1 STEP")
    if lost:
        out.append(f"LOST {lost}")
    return out


def render(storm: dict) -> str:
    lines = ["\n== restart storm: one of two careline processes SIGKILLed and restarted (times from the kill)"]
    for name, r in storm.items():
        if "error" in r:
            lines.append(f"{name}: ERROR {r['error']}")
            continue
        f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        srv = r["servers"]
        lines += [
            f"{r['clients']} clients ({r['transports']}), {r['loadgens']} Node load generators (cpu % "
            f"{', '.join(f'{c:.0f}' for c in r['loadgenCpuPct'])}), {r['rate']:g} messages/s; env {r['serverEnv'] or '-'}",
            f"restarted process answers /health {r['restartReadyS']:.2f} s after the kill",
            f"{r['victims']} clients of the killed process: reconnected {r['reconnected']} (99 % {f(r['reconnect99S'])} s, "
            f"100 % {f(r['reconnect100S'])} s), caught up {r['caughtUp']} (99 % {f(r['caughtUp99S'])} s, "
            f"100 % {f(r['caughtUp100S'])} s)",
            f"connect errors {r['connectErrors'] or 0}; after ready {r['refusalsAfterReady'] or 0}; "
            f"refused more than one backoff step: {r['refusedMoreThanOneStep']}; attempts {r['reconnectAttempts']}",
            f"namespace refusals {r['namespaceErrors'] or 0}; catch-up requests refused (retried) {r['catchUpErrors'] or 0}; surviving process's clients dropped {r['survivorClientsDropped']}",
            f"messages sent {r['sent']}, acked {r['acked']}, skipped (sender offline) {r['skippedOffline']}, "
            f"failed {r['ackFailures'] or 0}; acked lost {r['lostAcked']} (member deliveries missing "
            f"{r['missingDeliveries']}, not stored {r['notStored']}; still missing at members whose catch-up had not "
            f"finished {r.get('missingAtClientsStillCatchingUp', '-')}); notifications received {r['notificationsReceived']}",
            f"surviving process peak cpu {f(srv['survivor']['peakCpuPct'])} %, RSS {srv['survivor']['peakRssMB']:.0f} MB; "
            f"restarted process peak cpu {f(srv['killed']['peakCpuPct'])} %, RSS {srv['killed']['peakRssMB']:.0f} MB; "
            f"database peak cpu {f(srv['database']['peakCpuPct'])} %",
            f"flags: {' '.join(r['flags']) or 'none'}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bench.run import main as bench_main

    return bench_main(["--scenarios", "storm", "--targets", "careline", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
