"""/health, /ready, /metrics and CORS."""
from __future__ import annotations

import aiohttp

from rest.app_keys import CONNECTIONS
from tests.conftest import RunningServer, StartServer


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_health(server: RunningServer) -> None:
    status, body, _ = await _get(server.url + "/health")
    assert status == 200 and '"ok"' in body


async def test_ready_follows_the_embedded_database(start_server: StartServer, test_env: dict[str, str]) -> None:
    env = {k: v for k, v in test_env.items() if k != "MONGODB_URI"}
    server = await start_server(env=env)
    embedded = server.app[CONNECTIONS].embedded
    assert embedded is not None and embedded.running
    status, body, _ = await _get(server.url + "/ready")
    assert status == 200, body
    embedded.stop()
    status, body, _ = await _get(server.url + "/ready")
    assert status == 503 and "mongodb" in body
    await embedded.start_async()
    status, body, _ = await _get(server.url + "/ready")
    assert status == 200, body


async def test_ready_checks_redis(start_server: StartServer) -> None:
    server = await start_server(redis=True)
    status, body, _ = await _get(server.url + "/ready")
    assert status == 200 and '"redis": "ok"' in body


async def test_metrics_count_requests(server: RunningServer) -> None:
    client = await server.client("u1", namespace="/booking")
    for _ in range(3):
        await client.call("session:refresh", {"token": server.token("u1")})
    await client.call("session:refresh", {})
    _, text, headers = await _get(server.url + "/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    assert 'careline_requests_total{code="ok",event="session:refresh",namespace="/booking"} 3.0' in text
    assert 'careline_requests_total{code="invalid_payload",event="session:refresh",namespace="/booking"} 1.0' in text
    assert 'careline_connected_sockets{namespace="/booking"} 1.0' in text
    assert 'careline_ack_latency_seconds_count{event="session:refresh",namespace="/booking"} 4.0' in text


async def test_cors_for_rest(start_server: StartServer) -> None:
    server = await start_server(cors_origins="https://app.example")
    _, _, allowed = await _get(server.url + "/health", {"Origin": "https://app.example"})
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example"
    _, _, denied = await _get(server.url + "/health", {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied
