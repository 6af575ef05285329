"""Tiny /proc readers for the server (and load generator) processes. Linux only."""
from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Pids of the direct children of a process."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.extend(int(child) for child in f.read().split())
    return found


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children_cpu_seconds(pid: int) -> float:
    """CPU time of the direct children still running (e.g. careline's embedded database)."""
    total = 0.0
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def sample(pid: int) -> dict:
    try:
        return {"cpu_s": cpu_seconds(pid), "children_cpu_s": children_cpu_seconds(pid), "rss": rss_bytes(pid),
                "fds": fd_count(pid)}
    except (FileNotFoundError, ProcessLookupError):
        return {"cpu_s": None, "rss": None, "fds": None, "gone": True}
