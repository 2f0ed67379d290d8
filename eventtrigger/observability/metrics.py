"""Prometheus metrics, on one registry per process so that several roles share them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Buckets from milliseconds to minutes: firing lateness is sub-second when all is well,
# and minutes when something is badly wrong; both must be visible.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "eventtrigger_http_requests_total",
            "API requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "eventtrigger_http_request_seconds",
            "API request duration",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.triggers = Gauge(
            "eventtrigger_triggers", "Triggers by type and status", ["type", "status"], registry=r
        )
        self.jobs_pending = Gauge(
            "eventtrigger_jobs_pending",
            "Occurrences and events waiting to fire or be delivered",
            registry=r,
        )
        self.jobs_processed = Counter(
            "eventtrigger_jobs_processed_total",
            "Jobs finished, by outcome",
            ["outcome"],
            registry=r,
        )
        self.delivery_attempts = Counter(
            "eventtrigger_delivery_attempts_total",
            "HTTP delivery attempts, by outcome",
            ["outcome"],
            registry=r,
        )
        self.events = Gauge(
            "eventtrigger_events", "Event logs by retention view", ["retention"], registry=r
        )
        self.fire_lateness = Histogram(
            "eventtrigger_fire_lateness_seconds",
            "Scheduled time to publish",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "eventtrigger_delivery_latency_seconds",
            "Scheduled time to the endpoint's answer",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
