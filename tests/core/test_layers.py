"""The layering rules import-linter cannot see (setup.cfg has the rest): bottom modules and aiohttp.web."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("server", "handlers", "realtime", "rest", "stores", "config", "errors", "clock", "logsetup")
BOTTOM = ("config", "errors", "clock", "logsetup")
LAYERS = ("handlers", "realtime", "rest", "stores")
PRODUCTION = [ROOT / "server.py", *(ROOT / f"{name}.py" for name in BOTTOM),
              *(path for package in LAYERS for path in (ROOT / package).rglob("*.py"))]
WEB_ALLOWED = ("server.py", "rest/", "realtime/engine/websocket.py")  # the transport subclasses WebSocketResponse


def imported(path: Path) -> set[str]:
    """Every module a file imports (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("name", BOTTOM)
def test_bottom_modules_import_nothing_of_the_layers_above(name: str) -> None:
    found = imported(ROOT / f"{name}.py")
    above = {module for module in found if module.split(".")[0] in PROJECT}
    outside = {module for module in found if module.split(".")[0] in ("aiohttp", "socketio", "engineio", "pymongo",
                                                                       "bson", "redis", "marshmallow")}
    assert not above and not outside, f"{name}.py imports {sorted(above | outside)}"


def test_only_rest_server_and_the_transport_import_aiohttp_web() -> None:
    offenders = [str(path.relative_to(ROOT)) for path in PRODUCTION
                 if any(module == "aiohttp.web" or module.startswith("aiohttp.web.") for module in imported(path))
                 and not str(path.relative_to(ROOT)).startswith(WEB_ALLOWED)]
    assert offenders == []


def test_the_scan_sees_the_production_code() -> None:
    assert len(PRODUCTION) > 60 and ROOT / "realtime" / "base.py" in PRODUCTION
