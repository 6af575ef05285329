"""Repeated warnings and errors of one cause are summarised (issue 17: a flood must not flood the log)."""
from __future__ import annotations

import logging

from logsetup import RepeatSummary


def record(msg: str, level: int = logging.ERROR, exc: type[BaseException] | None = None) -> logging.LogRecord:
    exc_info = (exc, exc(), None) if exc else None
    return logging.LogRecord("careline.x", level, __file__, 1, msg, None, exc_info)


def test_one_line_per_cause_and_interval_with_a_count() -> None:
    now = [0.0]
    summary = RepeatSummary(interval=60.0, clock=lambda: now[0])
    assert summary.filter(record("internal error handling %s"))
    assert [summary.filter(record("internal error handling %s")) for _ in range(500)] == [False] * 500
    assert summary.filter(record("another cause"))
    assert summary.filter(record("internal error handling %s", exc=KeyError))  # another exception type
    assert summary.filter(record("request", level=logging.INFO))  # info is never held back
    now[0] = 61.0
    passed = record("internal error handling %s")
    assert summary.filter(passed) and passed.repeated == 500  # type: ignore[attr-defined]
    again = record("internal error handling %s")
    now[0] = 130.0
    assert summary.filter(again) and not hasattr(again, "repeated")
