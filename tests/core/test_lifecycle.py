"""Process lifecycle: the embedded database never outlives careline; configuration refusals; dev tokens."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jwt
import pytest

from stores.embedded import free_port
from tests.conftest import ROOT, wait_healthy


def _embedded_pids(data_dir: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "--", f"--storage-path {data_dir / 'db'}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "REDIS_URL", "JWT_SECRET"}}
    env.update(DATA_DIR=str(data_dir), HOST="127.0.0.1", LOG_LEVEL="WARNING", **extra)
    return env


def _wait_gone(data_dir: Path, timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := _embedded_pids(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_stop_leaves_no_embedded_database(tmp_path: Path, signum: int) -> None:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=_env(tmp_path, PORT=str(port)))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process)
        assert time.monotonic() - started < 15
        assert len(_embedded_pids(tmp_path)) == 1
        process.send_signal(signum)
        assert process.wait(20) == 0
        assert _wait_gone(tmp_path) == []
    finally:
        process.kill()


async def test_kill_9_leaves_no_embedded_database(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=_env(tmp_path, PORT=str(port)))
    await wait_healthy(f"http://127.0.0.1:{port}", process)
    process.kill()
    process.wait()
    assert _wait_gone(tmp_path) == []


def test_crash_during_startup_leaves_no_embedded_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "server.py"], cwd=ROOT, env=_env(tmp_path, PORT=str(port)),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert _wait_gone(tmp_path) == []


@pytest.mark.parametrize("missing,message", [
    ({"MONGODB_URI": ""}, "MONGODB_URI"),
    ({"JWT_SECRET": ""}, "JWT_SECRET"),
    ({"MESSAGE_KEYS": ""}, "MESSAGE_KEYS"),
    ({"CHAT_WRITE_INTERVAL_MS": "500"}, "CHAT_WRITE_INTERVAL_MS"),
])
def test_production_refuses_missing_or_invalid_settings(tmp_path: Path, missing: dict[str, str], message: str) -> None:
    env = _env(tmp_path, CARELINE_ENV="production", MONGODB_URI="mongodb://127.0.0.1:1",
               JWT_SECRET="s" * 40, MESSAGE_KEYS="k1:" + "A" * 43, VAPID_PRIVATE_KEY="x")
    env.update(missing)
    result = subprocess.run([sys.executable, "server.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "dev-secrets.json").exists()


def test_development_secrets_are_generated_once(tmp_path: Path) -> None:
    def token() -> str:
        result = subprocess.run([sys.executable, "server.py", "token", "--sub", "u1", "--role", "therapist",
                                 "--name", "Dr A", "--ttl", "60"], cwd=ROOT, env=_env(tmp_path),
                                capture_output=True, text=True, timeout=30, check=True)
        return result.stdout.strip()

    first, second = token(), token()
    secrets_file = tmp_path / "dev-secrets.json"
    assert secrets_file.exists() and oct(secrets_file.stat().st_mode)[-3:] == "600"

    secret = json.loads(secrets_file.read_text())["JWT_SECRET"]
    for value in (first, second):
        claims = jwt.decode(value, secret, algorithms=["HS256"])
        assert claims["sub"] == "u1" and claims["role"] == "therapist" and claims["name"] == "Dr A"
        assert 0 < claims["exp"] - time.time() <= 60


def test_worker_refuses_the_embedded_default(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "server.py", "worker"], cwd=ROOT, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "the worker needs MONGODB_URI and REDIS_URL" in result.stderr


def test_worker_runs_the_background_jobs_and_stops_cleanly(tmp_path: Path, test_env: dict[str, str]) -> None:
    env = _env(tmp_path, MONGODB_URI=test_env["MONGODB_URI"], MONGODB_DB=test_env["MONGODB_DB"],
               REDIS_URL=test_env["_REDIS_URL"], REDIS_PREFIX=test_env["REDIS_PREFIX"], JWT_SECRET="s" * 40)
    env["LOG_LEVEL"], env["WORKER_PORT"] = "INFO", str(free_port())
    process = subprocess.Popen([sys.executable, "server.py", "worker"], cwd=ROOT, env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines.append(process.stderr.readline())
            if "background jobs running" in lines[-1]:
                break
        assert "booking-scheduler" in lines[-1] and "notifications-held-pushes" in lines[-1]
        # The worker's own jobs are counted in it: it serves /metrics (and /health) on WORKER_PORT.
        ops = f"http://127.0.0.1:{env['WORKER_PORT']}"
        with urllib.request.urlopen(f"{ops}/health", timeout=5) as health:
            assert json.load(health) == {"status": "ok"}
        with urllib.request.urlopen(f"{ops}/metrics", timeout=5) as scrape:
            metrics = scrape.read().decode()
        for series in ('careline_job_queue_due{queue="emails"}', 'careline_job_successes_total{queue="emails"}',
                       'careline_job_failures_total{queue="booking-reminders"}'):
            assert series in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        process.kill()
