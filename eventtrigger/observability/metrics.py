"""Prometheus metrics, on one registry per process so that several roles share them.

Counters and histograms are fed where things happen (scheduler, worker). Figures that
need the database (pending jobs, events by retention view, triggers by type and status)
are set from the periodic snapshot (`observability/stats.py`), never queried per scrape.
The recent p50/p95/p99 gauges are computed at scrape time from a 5-minute window of this
process's own observations.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from eventtrigger.domain.jobs import REJECT_REASONS

# Buckets from milliseconds to minutes: firing lateness is sub-second when all is well,
# and minutes when something is badly wrong; both must be visible.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
    600,
)  # fmt: skip
QUANTILES = (0.5, 0.95, 0.99)
# Which limit refused a webhook call (eventtrigger_ingest_rate_limited_total{scope}).
INGEST_LIMIT_SCOPES = ("trigger", "address")
# Why a key check refused a request (eventtrigger_auth_failures_total{reason}).
AUTH_FAILURE_REASONS = ("missing", "invalid", "expired", "revoked", "scope")
disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series only double the output; nobody graphs them
RECENT_SECONDS = 300.0


def quantiles(values: list[float], qs: tuple[float, ...] = QUANTILES) -> dict[float, float]:
    """Nearest-rank quantiles of `values` (empty: NaN)."""
    if not values:
        return {q: math.nan for q in qs}
    ordered = sorted(values)
    return {q: ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] for q in qs}


class RecentWindow:
    """Observations of the last RECENT_SECONDS, for recent quantiles."""

    def __init__(self, horizon: float = RECENT_SECONDS, cap: int = 100_000) -> None:
        self._horizon = horizon
        self._items: deque[tuple[float, float]] = deque(maxlen=cap)

    def add(self, value: float, at: float | None = None) -> None:
        self._items.append((time.monotonic() if at is None else at, value))

    def values(self, now: float | None = None) -> list[float]:
        cutoff = (time.monotonic() if now is None else now) - self._horizon
        while self._items and self._items[0][0] < cutoff:
            self._items.popleft()
        return [v for _, v in self._items]


class _RecentQuantiles(Collector):
    def __init__(self, name: str, doc: str, window: RecentWindow) -> None:
        self._name, self._doc, self._window = name, doc, window

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=["quantile"])
        for q, value in quantiles(self._window.values()).items():
            family.add_metric([str(q)], value)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.http_requests = Counter(
            "eventtrigger_http_requests_total", "HTTP requests answered",
            ["method", "status"], registry=r,
        )  # fmt: skip
        self.triggers = Gauge(
            "eventtrigger_triggers", "Triggers by type and status (cluster-wide)",
            ["type", "status"], registry=r,
        )  # fmt: skip
        self.jobs_pending = Gauge(
            "eventtrigger_jobs_pending",
            "Work waiting (cluster-wide): overdue occurrences plus unfinished events",
            registry=r,
        )
        self.jobs_processing = Gauge(
            "eventtrigger_jobs_processing", "Deliveries in flight in this process", registry=r
        )
        self.jobs_processed = Counter(
            "eventtrigger_jobs_processed_total", "Jobs finished, by outcome", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.delivery_attempts = Counter(
            "eventtrigger_delivery_attempts_total",
            "HTTP delivery attempts, by outcome (success, retrying, failure)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.events = Gauge(
            "eventtrigger_events", "Event logs by retention view (cluster-wide)", ["retention"],
            registry=r,
        )  # fmt: skip
        self.fire_lateness = Histogram(
            "eventtrigger_fire_lateness_seconds", "Scheduled time to publish",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.delivery_latency = Histogram(
            "eventtrigger_delivery_latency_seconds", "Scheduled time to the endpoint's answer",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.schedule_errors = Counter(
            "eventtrigger_schedule_errors_total",
            "Occurrences recorded as failed because their trigger's schedule could not be "
            "computed (e.g. a time zone missing from tzdata)",
            registry=r,
        )
        self.requeued = Counter(
            "eventtrigger_jobs_requeued_total",
            "Jobs a worker handed back for a moment because their host's queue was full",
            registry=r,
        )
        self.replays = Counter(
            "eventtrigger_replays_total", "Events created by replaying an earlier event",
            registry=r,
        )  # fmt: skip
        self.misfires = Counter(
            "eventtrigger_misfires_total",
            "Occurrences found more than their misfire grace late, by the policy applied",
            ["policy"], registry=r,
        )  # fmt: skip
        self.auto_paused = Counter(
            "eventtrigger_auto_paused_total",
            "Triggers paused after auto_pause_after consecutive final failures",
            registry=r,
        )
        self.jobs_rejected = Counter(
            "eventtrigger_jobs_rejected_total",
            "Messages on the job topic that were not usable jobs, by reason; each is "
            "copied to the dead-letter topic and skipped",
            ["reason"], registry=r,
        )  # fmt: skip
        self.auth_failures = Counter(
            "eventtrigger_auth_failures_total",
            "Management API requests refused by the key check, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.ingest_rate_limited = Counter(
            "eventtrigger_ingest_rate_limited_total",
            "Webhook calls answered 429 by a rate limit: the trigger's own "
            "(config.ingest_rate_limit) or the per-client-address one",
            ["scope"], registry=r,
        )  # fmt: skip
        self.event_streams_open = Gauge(
            "eventtrigger_event_streams_open",
            "Live event streams (GET /api/v1/events/stream) open in this process",
            registry=r,
        )
        self.event_streams_dropped = Counter(
            "eventtrigger_event_streams_dropped_total",
            "Live event streams ended because their client read slower than changes came",
            registry=r,
        )
        self.event_stream_poll_failures = Counter(
            "eventtrigger_event_stream_poll_failures_total",
            "Turns of the live event stream's poller that failed (retried after a pause)",
            registry=r,
        )
        self.recent_lateness = RecentWindow()
        self.recent_delivery = RecentWindow()
        r.register(_RecentQuantiles(
            "eventtrigger_fire_lateness_recent_seconds",
            "Fire lateness quantiles over the last 5 minutes (this process)",
            self.recent_lateness,
        ))  # fmt: skip
        r.register(_RecentQuantiles(
            "eventtrigger_delivery_latency_recent_seconds",
            "Delivery latency quantiles over the last 5 minutes (this process)",
            self.recent_delivery,
        ))  # fmt: skip
        for outcome in ("success", "failure"):
            self.jobs_processed.labels(outcome)
        for outcome in ("success", "retrying", "failure"):
            self.delivery_attempts.labels(outcome)
        for reason in REJECT_REASONS:
            self.jobs_rejected.labels(reason)
        for scope in INGEST_LIMIT_SCOPES:
            self.ingest_rate_limited.labels(scope)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)

    def observe_lateness(self, seconds: float) -> None:
        self.fire_lateness.observe(seconds)
        self.recent_lateness.add(seconds)

    def observe_delivery(self, seconds: float) -> None:
        self.delivery_latency.observe(seconds)
        self.recent_delivery.add(seconds)
