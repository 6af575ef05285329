"""The bench's printed tables: a target that failed shows as an ERROR row beside the others' figures."""
from __future__ import annotations

from bench.run import render

MEMORY = {"aliveAtMeasure": 100, "rssBaselineMB": 50.0, "rssLoadedMB": 60.0, "rssPerConnKB": 15.4,
          "rssClosedMB": 55.0, "fdsBaseline": 10, "fdsLoaded": 110, "fdsClosed": 10, "connectSeconds": 0.4,
          "cpuUsPerConn": 150.0, "childCpuUsPerConn": None, "flags": []}


def test_a_failed_target_is_an_error_row_beside_the_others() -> None:
    printed = render({"meta": {"args": {}}, "scenarios": {"memory": {
        "node": MEMORY, "careline": {"error": "server exited with code 1"}}}})
    rows = {line.split()[0]: line for line in printed.splitlines() if line.split()[:1] in (["node"], ["careline"])}
    assert "15.4" in rows["node"] and "0.4" in rows["node"]
    assert rows["careline"].endswith("ERROR: server exited with code 1")
