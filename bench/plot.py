"""`python -m bench --plot [FILE ...]`: SVG charts of a run's JSON for docs/performance.md.

From the run files given (default bench/results/latest.json; a later file's scenarios replace an earlier's):

* docs/perf-fanout.svg: p50 and p99 latency against offered deliveries/s, one colour per target (fanout);
* docs/perf-memory.svg: time for the connects and KB per idle connection per target (memory);
* docs/perf-storm.svg: the killed process's clients reconnected and caught up against seconds since the kill (storm).

A chart whose scenario is in none of the files is not drawn.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.targets import BENCH_DIR, REPO_ROOT

LATEST = BENCH_DIR / "results" / "latest.json"
COLOURS = {"node": "#3a7d44", "plain": "#8c8c8c", "careline-transport": "#1f5fa8", "careline": "#d1495b"}


def merge(paths: list[Path]) -> tuple[dict, dict]:
    """(scenarios, meta of the run each scenario came from) over the files, later files winning."""
    scenarios: dict = {}
    metas: dict = {}
    for path in paths:
        run = json.loads(path.read_text())
        for name, results in run["scenarios"].items():
            scenarios[name] = results
            metas[name] = run["meta"]
    return scenarios, metas


def caption(meta: dict) -> str:
    start, end = meta.get("loadavg_start", [0])[0], (meta.get("loadavg_end") or [0])[0]
    return f"run {meta.get('run_id')}, os.cpu_count()={meta.get('cpu_count')}, load average {start:.2f} → {end:.2f}"


def fanout(results: dict, meta: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for target, r in results.items():
        steps = [s for s in r.get("steps", []) if not s.get("skipped")]
        if not steps:
            continue
        rates = [s["rate"] for s in steps]
        colour = COLOURS.get(target)
        ax.plot(rates, [s["latencyMs"]["p99"] for s in steps], "o-", color=colour, label=f"{target} p99")
        ax.plot(rates, [s["latencyMs"]["p50"] for s in steps], "s--", color=colour, alpha=0.7, label=f"{target} p50")
    ax.set(xscale="log", yscale="log", xlabel="offered deliveries/s", ylabel="latency ms (send → receipt)",
           title="fan-out: one room, latency against offered rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.text(0.01, -0.06, caption(meta), fontsize=7)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def memory(results: dict, meta: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    rows = [(t, r) for t, r in results.items() if "error" not in r]
    names = [t for t, _ in rows]
    colours = [COLOURS.get(t, "#555555") for t in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    conns = rows[0][1].get("aliveAtMeasure", "?") if rows else "?"
    left.bar(names, [r["connectSeconds"] for _, r in rows], color=colours)
    left.set(ylabel="seconds", title=f"connect {conns} authenticated sockets")
    right.bar(names, [r["rssPerConnKB"] for _, r in rows], color=colours)
    right.set(ylabel="KB of server RSS", title="KB per idle connection")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20)
        ax.grid(True, axis="y", alpha=0.3)
    fig.text(0.01, -0.06, caption(meta), fontsize=7)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def storm(results: dict, meta: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    r = results["careline"]
    n = r["victims"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label, colour in (("reconnectCurveS", "reconnected (both namespaces)", "#1f5fa8"),
                               ("caughtUpCurveS", "caught up by seq", "#d1495b")):
        times = r[key]
        ax.step([0.0, *times], [0.0, *((i + 1) / n for i in range(len(times)))], where="post", color=colour, label=label)
    ax.axvline(r["restartReadyS"], color="#888888", linestyle=":", label="restarted process answers /health")
    ax.axvline(30, color="#000000", linestyle="--", alpha=0.4, label="target: 30 s")
    ax.set(xlabel="seconds since SIGKILL", ylabel=f"fraction of the killed process's {n} clients", ylim=(0, 1.02),
           title=f"restart storm: {r['clients']} clients on two processes, one killed and restarted")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, -0.06, caption(meta), fontsize=7)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


CHARTS = {"fanout": ("perf-fanout.svg", fanout), "memory": ("perf-memory.svg", memory), "storm": ("perf-storm.svg", storm)}


def draw(paths: list[Path], out_dir: Path) -> list[Path]:
    """Draw every chart whose scenario the files hold; returns the files written."""
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "careline"  # stable ids: a redraw of the same run diffs as nothing
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, searchable, selectable
    scenarios, metas = merge(paths)
    written = []
    for scenario, (name, chart) in CHARTS.items():
        results = scenarios.get(scenario)
        if results and not all("error" in r for r in results.values()):
            chart(results, metas[scenario], out_dir / name)
            written.append(out_dir / name)
    return written


def main(files: list[str], out_dir: Path | None = None) -> int:
    written = draw([Path(f) for f in files] or [LATEST], out_dir or REPO_ROOT / "docs")
    for path in written:
        print(path)
    return 0 if written else 1
