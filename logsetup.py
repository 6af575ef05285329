"""Structured logging: JSON lines or `key=value` text; never payload contents."""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if not extra:
            return line
        head, sep, tail = line.partition("\n")
        return f"{head} {extra}{sep}{tail}"


class RepeatSummary(logging.Filter):
    """Warnings and errors of one cause (logger, message template, exception type) are written once per
    `interval` seconds; the next one written carries `repeated=N`, how many were held back meanwhile. A
    flood of one failure costs one line a minute, not one per request."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_causes: int = 10_000) -> None:
        super().__init__()
        self.interval, self._clock, self.max_causes = interval, clock, max_causes
        self._causes: dict[tuple[str, str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass INFO and below; pass a warning or error unless its cause was written within `interval`."""
        if record.levelno < logging.WARNING:
            return True
        kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        cause, now = (record.name, str(record.msg), kind), self._clock()
        written, held = self._causes.get(cause, (float("-inf"), 0))
        if now - written < self.interval:
            self._causes[cause] = (written, held + 1)
            return False
        if len(self._causes) >= self.max_causes:
            self._causes.clear()
        self._causes[cause] = (now, 0)
        if held:
            record.repeated = held
        return True


def configure(level: str, fmt: str) -> None:
    """Install the chosen formatter on the root logger, with repeated warnings and errors summarised."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RepeatSummary())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "pymongo", "socketio", "engineio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
