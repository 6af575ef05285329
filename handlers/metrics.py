"""Prometheus metrics of one app (requests, sockets, ack latency): counted by realtime, served by rest."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Connected sockets, requests by event and result code, ack latency, embedded database restarts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connected = Gauge("careline_connected_sockets", "Connected sockets", ["namespace"],
                               registry=self.registry)
        self.requests = Counter("careline_requests", "Requests by event and result code",
                                ["namespace", "event", "code"], registry=self.registry)
        self.latency = Histogram("careline_ack_latency_seconds", "Time from request to ack",
                                 ["namespace", "event"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.connect_refused = Counter("careline_connect_refused", "Refused connections by code",
                                       ["namespace", "code"], registry=self.registry)
        self.embedded_db_restarts = Counter("careline_embedded_db_restarts",
                                            "Restarts of the embedded database (it exited or stopped answering)",
                                            registry=self.registry)
        self._request_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # `labels()` is slow per call

    def request_done(self, namespace: str, event: str, code: str, seconds: float) -> None:
        """Count one answered request and observe its latency."""
        key = (namespace, event, code)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (self.requests.labels(namespace, event, code),
                                                  self.latency.labels(namespace, event))
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
