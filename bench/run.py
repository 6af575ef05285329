"""Benchmark runner: starts each target pinned to the server core, drives it with the Node
load generator pinned to the other core, samples the server's /proc, prints tables and writes JSON.

    python -m bench                                  # fanout, memory, last, redis on node, plain, careline
    python -m bench --quick --targets node,plain     # small smoke run
    python -m bench --scenarios churn --duration 600 # churn soak
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import plot, procstat, storm
from bench.targets import BENCH_DIR, REPO_ROOT, ServerProc, Target, make_targets

LOADGEN = BENCH_DIR / "loadgen" / "loadgen.js"
ALL_SCENARIOS = ["fanout", "memory", "last", "redis", "churn", "storm"]
DEFAULT_SCENARIOS = ["fanout", "memory", "last", "redis"]

QUICK = dict(sockets=100, rates="500,1000,2000,5000", step_duration=3.0, memory_conns=1000, last_sockets=500,
             last_count=20, redis_sockets=50, redis_rate=500, redis_duration=5.0, duration=30.0)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default="node,plain,careline,careline-transport", help="comma list of: node, plain, careline, careline-transport (default: all; unavailable ones are skipped)")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma list of {ALL_SCENARIOS} (default: {','.join(DEFAULT_SCENARIOS)}; churn only on request)")
    p.add_argument("--quick", action="store_true", help="small sizes for development / smoke runs (explicit flags still win)")
    g = p.add_argument_group("fan-out (1)")
    g.add_argument("--sockets", type=int, help="sockets in the fan-out room (default 1000)")
    g.add_argument("--rates", help="deliveries/s steps (default 5000,10000,20000,50000)")
    g.add_argument("--step-duration", type=float, help="seconds of sending per step (default 5)")
    g.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds at the first rate, not reported (default 2)")
    g.add_argument("--drain-timeout", type=float, default=5.0, help="seconds to wait after the last send for missing deliveries (default 5)")
    g.add_argument("--no-skip", action="store_true", help="keep stepping up even after a step did not drain")
    g.add_argument("--payload-bytes", type=int, default=60, help="message text size (default 60)")
    g = p.add_argument_group("memory (2)")
    g.add_argument("--memory-conns", type=int, help="idle authenticated connections (default 10000)")
    g.add_argument("--memory-rounds", type=int, default=1, help="connect and close the sockets this many times; "
                   "more than 1 adds the last round's RSS and its growth over the first (default 1)")
    g.add_argument("--settle", type=float, default=3.0, help="seconds to let the server settle before sampling RSS (default 3)")
    g = p.add_argument_group("last socket (3)")
    g.add_argument("--last-sockets", type=int, help="sockets in the room (default 5000)")
    g.add_argument("--last-count", type=int, help="broadcasts measured, one at a time (default 50)")
    g.add_argument("--last-gap-ms", type=int, default=100, help="pause between broadcasts (default 100)")
    g = p.add_argument_group("redis, two processes (4)")
    g.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    g.add_argument("--redis-prefix", default=None, help="key/channel prefix (default careline-bench-<run id>)")
    g.add_argument("--redis-sockets", type=int, help="receiving sockets on process B (default 100)")
    g.add_argument("--redis-rate", type=int, help="deliveries/s (default 1000)")
    g.add_argument("--redis-duration", type=float, help="seconds (default 10)")
    g = p.add_argument_group("churn soak (5)")
    g.add_argument("--duration", type=float, help="soak seconds (default 600)")
    g.add_argument("--churn-concurrency", type=int, default=20, help="concurrent connect/chat/disconnect loops (default 20)")
    g.add_argument("--churn-rate", type=float, default=200.0, help="cycles/s attempted in total, 0 = unthrottled (default 200)")
    g.add_argument("--churn-warmup", type=float, default=None, help="seconds excluded from growth (default min(60, duration/5))")
    g.add_argument("--sample-interval", type=float, default=5.0, help="RSS/fd sampling period in seconds (default 5)")
    g = p.add_argument_group("machine")
    g.add_argument("--server-cpu", default="0", help="cpu list for the server(s) (taskset -c; default 0)")
    g.add_argument("--loadgen-cpu", default="1", help="cpu list for the load generator (default 1)")
    g.add_argument("--no-pin", action="store_true", help="do not pin (not recommended)")
    g.add_argument("--lg-max-cpu", type=float, default=80.0, help="flag rows where the load generator used more than this %% of its core (default 80)")
    g = p.add_argument_group("careline target")
    g.add_argument("--careline-root", default=str(REPO_ROOT), help="directory holding careline's server.py (default: this repo)")
    g.add_argument("--careline-mongodb-uri", default=None, help="MONGODB_URI for careline (default unset: careline embeds its DB)")
    g.add_argument("--careline-log-level", default="WARNING")
    g.add_argument("--careline-ready-timeout", type=float, default=60.0)
    g.add_argument("--jwt-secret", default=None, help="JWT_SECRET given to careline and used to mint tokens (default random)")
    p.add_argument("--profile", action="store_true", help="sample every server process with py-spy; collapsed stacks "
                   "go to bench/results/run-<time>/profiles/<scenario>-<target>-<i>.txt (slows the server a little)")
    p.add_argument("--memory-snapshots", action="store_true", help="careline-transport: trace allocations and write a "
                   "tracemalloc snapshot at every checkpoint to bench/results/run-<time>/snapshots/<label>.<n> (slow)")
    storm.add_args(p)
    p.add_argument("--plot", nargs="*", metavar="FILE", default=None, help="draw docs/perf-*.svg from run JSON files "
                   "(default bench/results/latest.json) instead of running; see bench/plot.py")
    p.add_argument("--out", default=None, help="JSON output path (default bench/results/bench-<time>.json)")
    a = p.parse_args(argv)
    full = dict(sockets=1000, rates="5000,10000,20000,50000", step_duration=5.0, memory_conns=10000, last_sockets=5000,
                last_count=50, redis_sockets=100, redis_rate=1000, redis_duration=10.0, duration=600.0)
    for k, v in (QUICK if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.rates = [int(x) for x in str(a.rates).split(",") if x]
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    for s in a.scenarios:
        if s not in ALL_SCENARIOS:
            p.error(f"unknown scenario {s}")
    a.jwt_secret = a.jwt_secret or secrets.token_hex(32)
    a.run_id = time.strftime("%Y%m%d-%H%M%S")
    a.redis_prefix = a.redis_prefix or f"careline-bench-{a.run_id}-{os.getpid()}"
    if a.churn_warmup is None:
        a.churn_warmup = min(60.0, a.duration / 5)
    return a


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ setup
def ensure_node_deps() -> None:
    for d in (BENCH_DIR, BENCH_DIR / "reference" / "node"):
        if not (d / "node_modules").is_dir():
            log(f"installing Node dependencies in {d} (npm ci)")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=d, check=True, stdout=sys.stderr)


def mint_tokens(args, n: int, path: Path) -> None:
    """HS256 JWTs per careline's contract. The reference servers accept any non-empty token."""
    import jwt

    exp = int(time.time()) + 86400
    sec = args.jwt_secret
    pub = {"id": "bench-therapist", "token": jwt.encode(
        {"sub": "bench-therapist", "role": "therapist", "name": "Bench Therapist", "exp": exp}, sec, algorithm="HS256")}
    users = [{"id": f"bench-u{i}", "token": jwt.encode(
        {"sub": f"bench-u{i}", "role": "client", "name": f"Bench User {i}", "exp": exp}, sec, algorithm="HS256")}
        for i in range(n)]
    path.write_text(json.dumps({"publisher": pub, "users": users}))


def pin(cpus: str, args) -> str | None:
    return None if args.no_pin else cpus


def versions() -> dict:
    v = {"python": platform.python_version()}
    try:
        import aiohttp
        import socketio

        v.update({"python-socketio": socketio.__version__ if hasattr(socketio, "__version__") else None,
                  "aiohttp": aiohttp.__version__})
    except Exception:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version

        v["python-socketio"] = version("python-socketio")
        v["python-engineio"] = version("python-engineio")
    except Exception:  # pragma: no cover
        pass
    try:
        v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        v["socket.io"] = json.loads((BENCH_DIR / "reference/node/node_modules/socket.io/package.json").read_text())["version"]
    except Exception:
        pass
    try:
        v["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    return v


# ------------------------------------------------------------------------------------------------ loadgen driver
class Sampler(threading.Thread):
    """Samples the servers' RSS / fds / CPU every `interval` seconds (churn soak)."""

    def __init__(self, pids: list[int], interval: float):
        super().__init__(daemon=True)
        self.pids, self.interval, self.samples = pids, interval, []
        self._halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self._halt.is_set():
            self.samples.append({"t": time.monotonic() - t0, "mono": time.monotonic(), "servers": [procstat.sample(p) for p in self.pids]})
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


def run_loadgen(args, cfg: dict, servers: list[ServerProc], workdir: Path) -> tuple[dict, list[dict]]:
    """Runs the load generator; answers its checkpoints after sampling the servers. Returns (result, checkpoints)."""
    cfg_path = workdir / f"loadgen-{cfg['label']}-{cfg['scenario']}.json"
    cfg_path.write_text(json.dumps(cfg))
    cmd = ["node", str(LOADGEN), str(cfg_path)]
    cpus = pin(args.loadgen_cpu, args)
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    proc = subprocess.Popen(cmd, cwd=BENCH_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    checkpoints, result, progress = [], None, []
    try:
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                log(f"loadgen: {line.rstrip()}")
                continue
            if msg["type"] == "checkpoint":
                for s in servers:
                    if s.proc.poll() is not None:
                        raise RuntimeError(f"{s.target.name} died (exit {s.proc.returncode}); log {s.log_path}\n{s.tail()}")
                    if args.memory_snapshots and s.target.name == "careline-transport":
                        os.kill(s.pid, signal.SIGUSR1)  # a tracemalloc snapshot (bench/careline_server.py)
                        time.sleep(5)
                checkpoints.append({"name": msg["name"], "mono": time.monotonic(), "msg": msg,
                                    "servers": [procstat.sample(s.pid) for s in servers],
                                    "loadgen": procstat.sample(proc.pid)})
                proc.stdin.write("ok\n")
                proc.stdin.flush()
            elif msg["type"] == "progress":
                progress.append(msg)
            elif msg["type"] == "result":
                result = msg
            elif msg["type"] == "error":
                raise RuntimeError(f"load generator failed: {msg['message']}")
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if result is None:
        raise RuntimeError(f"load generator exited {proc.returncode} without a result")
    if progress:
        result["progress"] = progress
    return result, checkpoints


def cpu_pct(a: dict, b: dict, ta: float, tb: float) -> float | None:
    if a.get("cpu_s") is None or b.get("cpu_s") is None or tb <= ta:
        return None
    return 100.0 * (b["cpu_s"] - a["cpu_s"]) / (tb - ta)


def base_cfg(args, target: Target, tokens: Path, scenario: str, label: str, url: str) -> dict:
    return {"scenario": scenario, "protocol": target.protocol, "url": url, "tokensFile": str(tokens), "label": label,
            "payloadBytes": args.payload_bytes, "connectConcurrency": 100}


def with_servers(args, target: Target, n: int, workdir: Path, label: str, redis: bool = False):
    servers = []
    try:
        for i in range(n):
            servers.append(ServerProc(target, pin(args.server_cpu, args), workdir / "logs", f"{label}-{target.name}-{i}",
                                      redis_url=args.redis_url if redis else None, redis_prefix=args.redis_prefix,
                                      snapshots_dir=workdir / "snapshots" if args.memory_snapshots else None))
        for s in servers:
            s.wait_ready()
            if args.profile:
                s.profile(workdir / "profiles")
        return servers
    except BaseException:
        for s in servers:
            s.stop()
        raise


# ------------------------------------------------------------------------------------------------ scenarios
def sc_fanout(args, target, tokens, workdir):
    servers = with_servers(args, target, 1, workdir, "fanout")
    try:
        cfg = base_cfg(args, target, tokens, "fanout", target.name, servers[0].url)
        cfg.update(sockets=args.sockets, rates=args.rates, stepDuration=args.step_duration, warmup=args.warmup,
                   drainTimeout=args.drain_timeout, noSkip=args.no_skip)
        res, cps = run_loadgen(args, cfg, servers, workdir)
    finally:
        for s in servers:
            s.stop()
    starts = [c for c in cps if c["name"] == "step-start"]
    ends = [c for c in cps if c["name"] == "step-end"]
    for step in res["steps"]:
        step["flags"] = []
        if step.get("skipped"):
            step["flags"].append("SKIPPED")
            continue
        a = next(c for c in starts if c["msg"]["rate"] == step["rate"])
        b = next(c for c in ends if c["msg"]["rate"] == step["rate"])
        step["serverCpuPct"] = cpu_pct(a["servers"][0], b["servers"][0], a["mono"], b["mono"])
        step["serverRssMB"] = (b["servers"][0]["rss"] or 0) / 2**20
        if not step["drained"]:
            step["flags"].append(f"LOST {step['lost']}")
        if step["lgCpuPct"] > args.lg_max_cpu:
            step["flags"].append("LOADGEN>%d%%" % args.lg_max_cpu)
    return res


def sc_memory(args, target, tokens, workdir):
    servers = with_servers(args, target, 1, workdir, "memory")
    try:
        cfg = base_cfg(args, target, tokens, "memory", target.name, servers[0].url)
        cfg.update(sockets=args.memory_conns, settleMs=int(args.settle * 1000), rounds=args.memory_rounds)
        res, cps = run_loadgen(args, cfg, servers, workdir)
    finally:
        for s in servers:
            s.stop()
    by = {c["name"]: c["servers"][0] for c in cps}
    conn = res["aliveAtMeasure"]
    res["rssBaselineMB"] = by["baseline"]["rss"] / 2**20
    res["rssLoadedMB"] = by["loaded"]["rss"] / 2**20
    res["rssClosedMB"] = by["closed"]["rss"] / 2**20
    res["fdsBaseline"], res["fdsLoaded"], res["fdsClosed"] = by["baseline"]["fds"], by["loaded"]["fds"], by["closed"]["fds"]
    res["rssPerConnKB"] = (by["loaded"]["rss"] - by["baseline"]["rss"]) / 1024 / conn if conn else None
    # CPU the connects cost (baseline -> loaded, i.e. the connects and --settle idle seconds): less noisy than
    # the wall time on a shared machine; the children (careline's embedded database) share the server's core
    cpu = by["loaded"]["cpu_s"] - by["baseline"]["cpu_s"]
    child_cpu = by["loaded"].get("children_cpu_s", 0.0) - by["baseline"].get("children_cpu_s", 0.0)
    res["cpuUsPerConn"] = 1e6 * cpu / conn if conn else None
    res["childCpuUsPerConn"] = 1e6 * child_cpu / conn if conn else None
    res["flags"] = [] if conn == args.memory_conns else [f"ONLY {conn} CONNECTED"]
    if args.memory_rounds > 1:  # growth of the last round against the first, loaded and after close
        last = args.memory_rounds
        res["rssLoadedLastMB"] = by[f"loaded{last}"]["rss"] / 2**20
        res["rssClosedLastMB"] = by[f"closed{last}"]["rss"] / 2**20
        res["loadedGrowthPct"] = 100 * (res["rssLoadedLastMB"] / res["rssLoadedMB"] - 1)
        res["closedGrowthPct"] = 100 * (res["rssClosedLastMB"] / res["rssClosedMB"] - 1)
        res["connectSecondsLast"] = res["rounds"][-1]["connectSeconds"]
    return res


def sc_last(args, target, tokens, workdir):
    servers = with_servers(args, target, 1, workdir, "last")
    try:
        cfg = base_cfg(args, target, tokens, "last", target.name, servers[0].url)
        cfg.update(sockets=args.last_sockets, count=args.last_count, gapMs=args.last_gap_ms, timeoutMs=10000)
        res, cps = run_loadgen(args, cfg, servers, workdir)
    finally:
        for s in servers:
            s.stop()
    a = next(c for c in cps if c["name"] == "start")
    b = next(c for c in cps if c["name"] == "end")
    res["serverCpuPct"] = cpu_pct(a["servers"][0], b["servers"][0], a["mono"], b["mono"])
    res["flags"] = []
    if res["incomplete"]:
        res["flags"].append(f"INCOMPLETE {res['incomplete']}")
    if res["lgCpuPct"] > args.lg_max_cpu:
        res["flags"].append("LOADGEN>%d%%" % args.lg_max_cpu)
    return res


def sc_redis(args, target, tokens, workdir):
    servers = with_servers(args, target, 2, workdir, "redis", redis=True)  # [A (emitter side), B (sockets)]
    try:
        cfg = base_cfg(args, target, tokens, "fanout", target.name, servers[1].url)
        cfg.update(publishUrl=servers[0].url, sockets=args.redis_sockets, rates=[args.redis_rate],
                   stepDuration=args.redis_duration, warmup=args.warmup, drainTimeout=args.drain_timeout, noSkip=True)
        res, cps = run_loadgen(args, cfg, servers, workdir)
    finally:
        for s in servers:
            s.stop()
    step = res["steps"][0]
    a = next(c for c in cps if c["name"] == "step-start")
    b = next(c for c in cps if c["name"] == "step-end")
    step["serverACpuPct"] = cpu_pct(a["servers"][0], b["servers"][0], a["mono"], b["mono"])
    step["serverBCpuPct"] = cpu_pct(a["servers"][1], b["servers"][1], a["mono"], b["mono"])
    step["flags"] = []
    if not step["drained"]:
        step["flags"].append(f"LOST {step['lost']}")
    if step["lgCpuPct"] > args.lg_max_cpu:
        step["flags"].append("LOADGEN>%d%%" % args.lg_max_cpu)
    res["redisPrefix"] = args.redis_prefix
    return res


def _slope_per_min(xs, ys):
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return None if den == 0 else 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def sc_churn(args, target, tokens, workdir):
    servers = with_servers(args, target, 1, workdir, "churn")
    sampler = Sampler([servers[0].pid], args.sample_interval)
    sampler.start()
    try:
        cfg = base_cfg(args, target, tokens, "churn", target.name, servers[0].url)
        cfg.update(concurrency=args.churn_concurrency, rate=args.churn_rate, durationS=args.duration, timeoutMs=5000,
                   settleMs=int(args.settle * 1000), progressMs=int(max(5.0, args.duration / 20) * 1000))
        res, cps = run_loadgen(args, cfg, servers, workdir)
    finally:
        try:
            sampler.stop()
        finally:
            for s in servers:
                s.stop()
    by = {c["name"]: c for c in cps}
    t_start, t_end = by["start"]["mono"], by["end"]["mono"]
    t_warm = t_start + args.churn_warmup
    soak = [s for s in sampler.samples if t_warm <= s["mono"] <= t_end and s["servers"][0].get("rss")]
    res["samples"] = [{"t": round(s["mono"] - t_start, 2), "rss": s["servers"][0]["rss"], "fds": s["servers"][0]["fds"]}
                      for s in sampler.samples if s["servers"][0].get("rss")]
    res["warmupS"] = args.churn_warmup
    base, idle = by["start"]["servers"][0], by["idle"]["servers"][0]
    res["rssStartMB"], res["rssIdleAfterMB"] = base["rss"] / 2**20, idle["rss"] / 2**20
    res["fdsStart"], res["fdsIdleAfter"] = base["fds"], idle["fds"]
    res["flags"] = []
    if soak:
        w, e = soak[0]["servers"][0], soak[-1]["servers"][0]
        res["rssAfterWarmupMB"], res["rssEndMB"] = w["rss"] / 2**20, e["rss"] / 2**20
        res["rssGrowthMB"] = (e["rss"] - w["rss"]) / 2**20
        res["rssGrowthPct"] = 100.0 * (e["rss"] - w["rss"]) / w["rss"]
        res["fdsAfterWarmup"], res["fdsEnd"] = w["fds"], e["fds"]
        res["fdsGrowth"] = e["fds"] - w["fds"]
        res["rssSlopeMBPerMin"] = _slope_per_min([s["mono"] for s in soak], [s["servers"][0]["rss"] / 2**20 for s in soak])
    else:
        res["flags"].append("NO SAMPLES AFTER WARM-UP")
    if res["errors"]:
        res["flags"].append(f"ERRORS {res['errors']}")
    if res["lgCpuPct"] > args.lg_max_cpu:
        res["flags"].append("LOADGEN>%d%%" % args.lg_max_cpu)
    return res


SCENARIOS = {"fanout": sc_fanout, "memory": sc_memory, "last": sc_last, "redis": sc_redis, "churn": sc_churn}


# ------------------------------------------------------------------------------------------------ tables
def table(title: str, headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    cells = [[fmt(v) for v in r] + ["-"] * (len(headers) - len(r)) for r in rows]  # an ERROR row may be short
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    out = [f"\n== {title}", line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def render(res: dict) -> str:
    parts = []
    sc = res["scenarios"]
    if "fanout" in sc:
        rows, by = [], {}
        for tname, r in sc["fanout"].items():
            if "error" in r:
                rows.append([tname, "-", "-", "-", "-", "-", "-", "-", "-", "-", "ERROR: " + r["error"][:60]])
                continue
            for s in r["steps"]:
                by[(tname, s["rate"])] = s
                if s.get("skipped"):
                    rows.append([tname, s["rate"], "-", "-", "-", "-", "-", "-", "-", "-", "SKIPPED (previous rate saturated)"])
                    continue
                L = s["latencyMs"]
                rows.append([tname, s["rate"], s["achievedPerS"], L["p50"], L["p99"], L["max"], s["lost"],
                             s.get("serverCpuPct"), s["lgCpuPct"], s["lgLoopDelayP99Ms"], " ".join(s["flags"])])
        sockets = next((r["sockets"] for r in sc["fanout"].values() if "sockets" in r), "?")
        parts.append(table(f"fan-out: {sockets} sockets in one room, {res['meta']['args']['payload_bytes']}-byte message",
                           ["target", "rate/s", "achieved/s", "p50 ms", "p99 ms", "max ms", "lost", "srv cpu%", "lg cpu%", "lg lag99 ms", "flags"], rows))
        for cname in (t for t in sc["fanout"] if t.startswith("careline") and "error" not in sc["fanout"][t]):
            rrows = []
            for ref in ("node", "plain"):
                for rate in res["meta"]["args"]["rates"]:
                    c, o = by.get((cname, rate)), by.get((ref, rate))
                    if not c or not o or c.get("skipped") or o.get("skipped"):
                        continue
                    rrows.append([f"{cname}/{ref}", rate, ratio(c["latencyMs"]["p50"], o["latencyMs"]["p50"]),
                                  ratio(c["latencyMs"]["p99"], o["latencyMs"]["p99"]), ratio(c["achievedPerS"], o["achievedPerS"])])
            parts.append(table(f"{cname} ratios (latency: <1 = careline faster; achieved: >1 = careline delivers more)",
                               ["ratio", "rate/s", "p50 x", "p99 x", "achieved x"], [[r[0], r[1]] + [None if v is None else f"{v:.2f}" for v in r[2:]] for r in rrows]))
    if "memory" in sc:
        rows = []
        for tname, r in sc["memory"].items():
            if "error" in r:
                rows.append([tname] + ["-"] * 9 + ["ERROR: " + r["error"][:60]])
                continue
            rows.append([tname, r["aliveAtMeasure"], r["rssBaselineMB"], r["rssLoadedMB"], r["rssPerConnKB"], r["rssClosedMB"],
                         f"{r['fdsBaseline']}/{r['fdsLoaded']}/{r['fdsClosed']}", r["connectSeconds"], r.get("cpuUsPerConn"),
                         r.get("childCpuUsPerConn"), " ".join(r["flags"])])
        parts.append(table("memory: idle authenticated connections (server RSS)",
                           ["target", "conns", "RSS before MB", "RSS loaded MB", "KB/conn", "RSS after close MB", "fds b/l/c",
                            "connect s", "cpu us/conn", "db cpu us/conn", "flags"], rows))
        rounds = [[tname, len(r["rounds"]), r["rssLoadedMB"], r["rssClosedMB"], r["rssLoadedLastMB"], r["rssClosedLastMB"],
                   r["loadedGrowthPct"], r["closedGrowthPct"], r["connectSecondsLast"]]
                  for tname, r in sc["memory"].items() if "rssLoadedLastMB" in r]
        if rounds:
            parts.append(table("memory: the same connects and closes again (last round against the first)",
                               ["target", "rounds", "loaded 1 MB", "closed 1 MB", "loaded last MB", "closed last MB",
                                "loaded growth %", "closed growth %", "connect s last"], rounds))
    if "last" in sc:
        rows = []
        for tname, r in sc["last"].items():
            if "error" in r:
                rows.append([tname] + ["-"] * 8 + ["ERROR: " + r["error"][:60]])
                continue
            rows.append([tname, r["sockets"], r["lastMs"]["n"], r["lastMs"]["p50"], r["lastMs"]["p99"], r["lastMs"]["max"],
                         r["firstMs"]["p50"], r.get("serverCpuPct"), r["lgCpuPct"], " ".join(r["flags"])])
        parts.append(table("broadcast to N sockets: time until the LAST socket receives it",
                           ["target", "sockets", "bcasts", "last p50 ms", "last p99 ms", "last max ms", "first p50 ms", "srv cpu%", "lg cpu%", "flags"], rows))
    if "redis" in sc:
        rows = []
        for tname, r in sc["redis"].items():
            if "error" in r:
                rows.append([tname] + ["-"] * 9 + ["ERROR: " + r["error"][:60]])
                continue
            s = r["steps"][0]
            L = s["latencyMs"]
            rows.append([tname, r["sockets"], s["rate"], s["achievedPerS"], L["p50"], L["p99"], L["max"], s["lost"],
                         f"{s['serverACpuPct'] or 0:.0f}/{s['serverBCpuPct'] or 0:.0f}", s["lgCpuPct"], " ".join(s["flags"])])
        parts.append(table(f"cross-process via Redis (emitter on A, sockets on B; prefix {res['meta']['args']['redis_prefix']})",
                           ["target", "sockets", "rate/s", "achieved/s", "p50 ms", "p99 ms", "max ms", "lost", "cpu% A/B", "lg cpu%", "flags"], rows))
    if "storm" in sc:
        parts.append(storm.render(sc["storm"]))
    if "churn" in sc:
        rows = []
        for tname, r in sc["churn"].items():
            if "error" in r:
                rows.append([tname] + ["-"] * 10 + ["ERROR: " + r["error"][:60]])
                continue
            rows.append([tname, r["durationS"], r["cycles"], r["cyclesPerS"], r["errors"], r.get("rssAfterWarmupMB"), r.get("rssEndMB"),
                         r.get("rssGrowthMB"), r.get("rssSlopeMBPerMin"), f"{r.get('fdsAfterWarmup')}->{r.get('fdsEnd')} ({r['fdsStart']}->{r['fdsIdleAfter']} idle)",
                         r["lgCpuPct"], " ".join(r["flags"])])
        parts.append(table("churn soak: connect, join, chat, disconnect (growth measured after warm-up)",
                           ["target", "secs", "cycles", "cycles/s", "errors", "RSS warm MB", "RSS end MB", "growth MB", "MB/min", "fds warm->end (idle before->after)", "lg cpu%", "flags"], rows))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.plot is not None:
        return plot.main(args.plot)
    ensure_node_deps()
    targets = make_targets(args)
    out_dir = BENCH_DIR / "results"
    workdir = out_dir / f"run-{args.run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    ncpu = os.cpu_count()
    meta = {
        "run_id": args.run_id, "cpu_count": ncpu, "affinity": sorted(os.sched_getaffinity(0)),
        "server_cpu": None if args.no_pin else args.server_cpu, "loadgen_cpu": None if args.no_pin else args.loadgen_cpu,
        "loadavg_start": os.getloadavg(), "versions": versions(), "platform": platform.platform(),
        "args": {k: v for k, v in vars(args).items() if k != "jwt_secret"},
    }
    log(f"cpu_count={ncpu} server cpus={meta['server_cpu']} loadgen cpus={meta['loadgen_cpu']} loadavg={meta['loadavg_start']}")
    if not args.no_pin and ncpu < 2:
        log("WARNING: fewer than 2 cores: server and load generator share a core; figures are not meaningful")
    if meta["loadavg_start"][0] > 0.5:
        log(f"WARNING: load average {meta['loadavg_start'][0]:.2f} before the run: other work on the machine makes figures noisy")
    selected = []
    skipped = {}
    for name in args.targets:
        if name not in targets:
            log(f"unknown target {name}; known: {', '.join(targets)}")
            return 2
        why = targets[name].unavailable()
        if why:
            log(f"target {name} skipped: {why}")
            skipped[name] = why
        else:
            selected.append(targets[name])
    meta["targets"] = {t.name: t.description for t in selected}
    meta["targets_skipped"] = skipped
    ntok = max([args.sockets if "fanout" in args.scenarios else 0, args.memory_conns if "memory" in args.scenarios else 0,
                args.last_sockets if "last" in args.scenarios else 0, args.redis_sockets if "redis" in args.scenarios else 0,
                args.churn_concurrency if "churn" in args.scenarios else 0, 1])
    tokens = workdir / "tokens.json"
    mint_tokens(args, ntok, tokens)
    res = {"meta": meta, "scenarios": {}}
    try:
        run_all(args, selected, tokens, workdir, res)
    finally:
        for s in list(ServerProc.alive):  # nothing we started may outlive the run
            s.stop()
    return finish(args, res, tokens, out_dir)


def run_all(args, selected, tokens, workdir, res):
    for scn in args.scenarios:
        res["scenarios"][scn] = {}
        if scn == "storm":  # careline alone: two processes of its own, not one per target
            log("--- storm / careline")
            try:
                res["scenarios"][scn]["careline"] = storm.run(args, workdir)
            except Exception as e:
                log(f"storm FAILED: {e}")
                res["scenarios"][scn]["careline"] = {"error": str(e)}
            continue
        for t in selected:
            log(f"--- {scn} / {t.name}")
            try:
                res["scenarios"][scn][t.name] = SCENARIOS[scn](args, t, tokens, workdir)
            except Exception as e:  # one broken target must not hide the others' figures
                log(f"{scn} / {t.name} FAILED: {e}")
                res["scenarios"][scn][t.name] = {"error": str(e)}
            time.sleep(1)


def finish(args, res, tokens, out_dir) -> int:
    meta = res["meta"]
    ncpu = meta["cpu_count"]
    meta["loadavg_end"] = os.getloadavg()
    tokens.unlink(missing_ok=True)
    out = Path(args.out) if args.out else out_dir / f"bench-{args.run_id}.json"
    out.write_text(json.dumps(res, indent=1, default=str))
    (out_dir / "latest.json").write_text(json.dumps(res, indent=1, default=str))
    text = render(res)
    print(f"careline bench {args.run_id}: os.cpu_count()={ncpu}, server on cpu {meta['server_cpu']}, load generator on cpu {meta['loadgen_cpu']}, "
          f"loadavg {meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}")
    print(text)
    print(f"\nJSON: {out}")
    flagged = [f for sc in res["scenarios"].values() for r in sc.values() for f in _flags(r)]
    if any(f.startswith("LOADGEN") for f in flagged):
        print(f"\n!!! LOAD GENERATOR SATURATED (> {args.lg_max_cpu:.0f}% of its core) on flagged rows: those figures measure the load generator, not the server.", file=sys.stderr)
        return 3
    if any("error" in r for sc in res["scenarios"].values() for r in sc.values()):
        return 1
    return 0


def _flags(r: dict) -> list[str]:
    fl = list(r.get("flags", []))
    for s in r.get("steps", []):
        fl += s.get("flags", [])
    return fl


if __name__ == "__main__":
    sys.exit(main())
