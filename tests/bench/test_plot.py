"""`python -m bench --plot`: SVG charts drawn from run files (fixtures shaped like bench/results/*.json)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import plot
from bench.run import main as bench_main

FIXTURES = Path(__file__).parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"


def texts(path: Path) -> str:
    """Every text of the SVG (drawn with svg.fonttype none: text stays text)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(node.itertext()) for node in root.iter(f"{SVG}text"))


def test_draws_one_chart_per_scenario_from_several_runs(tmp_path: Path) -> None:
    written = plot.draw([FIXTURES / "run-fanout-memory.json", FIXTURES / "run-storm.json"], tmp_path)

    assert sorted(p.name for p in written) == ["perf-fanout.svg", "perf-memory.svg", "perf-storm.svg"]
    fanout = texts(tmp_path / "perf-fanout.svg")
    assert "node p99" in fanout and "careline p50" in fanout
    assert "plain" not in fanout  # a target whose run failed has no curve
    assert "os.cpu_count()=2" in fanout and "0.40 → 0.90" in fanout
    memory = texts(tmp_path / "perf-memory.svg")
    assert "careline-transport" in memory and "KB per idle connection" in memory and "10000" in memory
    storm = texts(tmp_path / "perf-storm.svg")
    assert "caught up by seq" in storm and "run fixture-storm" in storm and "4 clients" in storm


def test_a_scenario_missing_from_the_runs_draws_nothing(tmp_path: Path) -> None:
    assert [p.name for p in plot.draw([FIXTURES / "run-storm.json"], tmp_path)] == ["perf-storm.svg"]
    assert not (tmp_path / "perf-fanout.svg").exists()


def test_bench_plot_option_draws_into_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(plot, "REPO_ROOT", tmp_path)
    (tmp_path / "docs").mkdir()

    assert bench_main(["--plot", str(FIXTURES / "run-storm.json")]) == 0

    assert (tmp_path / "docs" / "perf-storm.svg").is_file()
    assert "perf-storm.svg" in capsys.readouterr().out


def test_no_chart_to_draw_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text('{"meta": {}, "scenarios": {"fanout": {"node": {"error": "x"}}}}')

    assert plot.main([str(empty)], tmp_path) == 1
