"""Prometheus metrics of one app (requests, sockets, ack latency): counted by realtime, served by rest."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers.queues import QueueStatus

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
        self._connected_series: dict[str, Any] = {}

    def sockets_of(self, namespace: str) -> Any:
        """The connected-sockets gauge of one namespace (its series looked up once, not per connect)."""
        series = self._connected_series.get(namespace)
        if series is None:
            series = self._connected_series[namespace] = self.connected.labels(namespace)
        return series

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


class JobSeries(Collector):
    """The background queues' series, from one set of queue statuses."""

    def __init__(self, statuses: list[QueueStatus]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[Metric]:
        """Depth, oldest due age and given-up jobs (gauges); successes, retries, failures (counters)."""
        gauges = (("careline_job_queue_due", "Jobs due now", lambda s: s.due),
                  ("careline_job_queue_oldest_due_age_seconds", "How long the earliest due job has been due",
                   lambda s: s.oldest_age_seconds),
                  ("careline_job_queue_failed", "Jobs given up (queues that give up; job:retry queues one again)",
                   lambda s: s.failed))
        for name, text, value in gauges:
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for status in self.statuses:
                if value(status) is not None:
                    family.add_metric([status.name], value(status))
            yield family
        counters = (("careline_job_successes", "Jobs done by this process", lambda s: s.successes),
                    ("careline_job_retries", "Jobs this process put back for a later try", lambda s: s.retries),
                    ("careline_job_failures", "Jobs this process gave up", lambda s: s.failures))
        for name, text, count in counters:
            counter = CounterMetricFamily(name, text, labels=["queue"])
            for status in self.statuses:
                counter.add_metric([status.name], count(status))
            yield counter


def render_jobs(statuses: list[QueueStatus]) -> bytes:
    """The Prometheus text of the background queues."""
    registry = CollectorRegistry()
    registry.register(JobSeries(statuses))
    return generate_latest(registry)
