"""Metrics: nearest-rank quantiles, the 5-minute window, and the registry's contract names."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from eventtrigger.domain.jobs import REJECT_REASONS
from eventtrigger.observability.metrics import RECENT_SECONDS, Metrics, RecentWindow, quantiles
from eventtrigger.observability.stats import publish
from eventtrigger.store.stats import Snapshot

QUANTILE_LABELS = {"0.5", "0.95", "0.99"}


def _samples(metrics: Metrics) -> dict[str, list[Sample]]:
    """Every sample of the registry's exposition, by sample name."""
    text = generate_latest(metrics.registry).decode()
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matches = [s.value for s in samples.get(name, []) if s.labels == labels]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


# ---- quantiles ----------------------------------------------------------------------------


def test_quantiles_of_nothing_are_nan() -> None:
    result = quantiles([])
    assert set(result) == {0.5, 0.95, 0.99}
    assert all(math.isnan(v) for v in result.values())


def test_quantiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted on purpose
    assert quantiles(values) == {0.5: 50.0, 0.95: 95.0, 0.99: 99.0}
    # Nearest rank picks an observed value, never an interpolation.
    assert quantiles([1.0, 2.0, 3.0, 4.0], (0.5, 0.75, 0.76, 1.0)) == {
        0.5: 2.0,
        0.75: 3.0,
        0.76: 4.0,
        1.0: 4.0,
    }
    assert quantiles([7.0], (0.0, 0.5, 0.99)) == {0.0: 7.0, 0.5: 7.0, 0.99: 7.0}


# ---- the recent window --------------------------------------------------------------------


def test_recent_window_drops_values_older_than_the_horizon() -> None:
    window = RecentWindow(horizon=300.0)
    window.add(1.0, at=1000.0)
    window.add(2.0, at=1100.0)
    window.add(3.0, at=1290.0)
    assert window.values(now=1290.0) == [1.0, 2.0, 3.0]
    assert window.values(now=1300.0) == [1.0, 2.0, 3.0]  # exactly at the horizon: kept
    assert window.values(now=1300.5) == [2.0, 3.0]
    assert window.values(now=1400.0) == [2.0, 3.0]
    assert window.values(now=1400.1) == [3.0]
    assert window.values(now=1591.0) == []


def test_recent_window_defaults_to_five_minutes() -> None:
    assert RECENT_SECONDS == 300.0
    window = RecentWindow()
    window.add(0.25, at=0.0)
    assert window.values(now=299.0) == [0.25]
    assert window.values(now=301.0) == []


# ---- the registry -------------------------------------------------------------------------


def test_registry_exposes_every_contract_name() -> None:
    metrics = Metrics()
    publish(
        Snapshot(
            triggers={"webhook": {"active": 1}},
            jobs={"pending": 0},
            events={"active": 0, "archived": 0},
        ),
        metrics,
    )
    samples = _samples(metrics)

    assert _value(samples, "eventtrigger_jobs_pending") == 0
    for outcome in ("success", "failure"):
        assert _value(samples, "eventtrigger_jobs_processed_total", outcome=outcome) == 0
    for outcome in ("success", "retrying", "failure"):
        assert _value(samples, "eventtrigger_delivery_attempts_total", outcome=outcome) == 0
    for view in ("active", "archived"):
        assert _value(samples, "eventtrigger_events", retention=view) == 0
    assert _value(samples, "eventtrigger_triggers", type="webhook", status="active") == 1

    for histogram in (
        "eventtrigger_fire_lateness_seconds",
        "eventtrigger_delivery_latency_seconds",
    ):
        assert _value(samples, f"{histogram}_count") == 0
        assert _value(samples, f"{histogram}_sum") == 0
        bounds = {float(s.labels["le"]) for s in samples[f"{histogram}_bucket"]}
        assert math.inf in bounds
        finite = sorted(b for b in bounds if b != math.inf)
        assert finite[0] <= 0.005, (histogram, finite)  # milliseconds are visible ...
        assert finite[-1] >= 300, (histogram, finite)  # ... and so are minutes

    for recent in (
        "eventtrigger_fire_lateness_recent_seconds",
        "eventtrigger_delivery_latency_recent_seconds",
    ):
        labels = {s.labels["quantile"] for s in samples[recent]}
        assert labels == QUANTILE_LABELS, (recent, labels)
        # Nothing observed yet: NaN, not a made-up zero.
        assert all(math.isnan(s.value) for s in samples[recent])


def test_observe_lateness_feeds_the_histogram_and_the_recent_quantiles() -> None:
    metrics = Metrics()
    for v in (0.002, 0.04, 0.3, 1.5, 400.0):
        metrics.observe_lateness(v)
    samples = _samples(metrics)

    assert _value(samples, "eventtrigger_fire_lateness_seconds_count") == 5
    assert math.isclose(
        _value(samples, "eventtrigger_fire_lateness_seconds_sum"), 0.002 + 0.04 + 0.3 + 1.5 + 400.0
    )
    assert _value(samples, "eventtrigger_fire_lateness_seconds_bucket", le="0.005") == 1
    assert _value(samples, "eventtrigger_fire_lateness_seconds_bucket", le="0.5") == 3
    assert _value(samples, "eventtrigger_fire_lateness_seconds_bucket", le="300.0") == 4
    assert _value(samples, "eventtrigger_fire_lateness_seconds_bucket", le="+Inf") == 5

    recent = "eventtrigger_fire_lateness_recent_seconds"
    assert _value(samples, recent, quantile="0.5") == 0.3
    assert _value(samples, recent, quantile="0.95") == 400.0
    assert _value(samples, recent, quantile="0.99") == 400.0

    # Delivery latency is a separate series: untouched.
    assert _value(samples, "eventtrigger_delivery_latency_seconds_count") == 0
    assert math.isnan(
        _value(samples, "eventtrigger_delivery_latency_recent_seconds", quantile="0.5")
    )


def test_observe_delivery_feeds_the_histogram_and_the_recent_quantiles() -> None:
    metrics = Metrics()
    for v in (0.1, 0.2, 0.3):
        metrics.observe_delivery(v)
    samples = _samples(metrics)

    assert _value(samples, "eventtrigger_delivery_latency_seconds_count") == 3
    recent = "eventtrigger_delivery_latency_recent_seconds"
    assert _value(samples, recent, quantile="0.5") == 0.2
    assert _value(samples, recent, quantile="0.99") == 0.3
    assert _value(samples, "eventtrigger_fire_lateness_seconds_count") == 0


def test_publish_sets_the_database_derived_gauges() -> None:
    metrics = Metrics()
    snap = Snapshot(
        as_of=datetime(2025, 1, 1, tzinfo=UTC),
        triggers={
            "webhook": {"active": 3, "paused": 1},
            "cron_scheduled": {"active": 2},
            "time_scheduled": {"completed": 4},
        },
        jobs={"pending": 7, "overdue_occurrences": 2, "events_pending": 4, "events_retrying": 1},
        events={"active": 11, "archived": 5},
    )
    publish(snap, metrics)
    samples = _samples(metrics)

    assert _value(samples, "eventtrigger_jobs_pending") == 7
    assert _value(samples, "eventtrigger_events", retention="active") == 11
    assert _value(samples, "eventtrigger_events", retention="archived") == 5
    triggers = {
        (s.labels["type"], s.labels["status"]): s.value for s in samples["eventtrigger_triggers"]
    }
    assert triggers == {
        ("webhook", "active"): 3,
        ("webhook", "paused"): 1,
        ("cron_scheduled", "active"): 2,
        ("time_scheduled", "completed"): 4,
    }

    # A later snapshot replaces the figures; a type/status that disappeared is dropped.
    publish(
        Snapshot(triggers={"webhook": {"active": 1}}, jobs={"pending": 0}, events={"active": 2}),
        metrics,
    )
    samples = _samples(metrics)
    assert _value(samples, "eventtrigger_jobs_pending") == 0
    assert _value(samples, "eventtrigger_events", retention="active") == 2
    assert _value(samples, "eventtrigger_events", retention="archived") == 0
    assert {
        (s.labels["type"], s.labels["status"]): s.value for s in samples["eventtrigger_triggers"]
    } == {("webhook", "active"): 1}


def test_rejected_jobs_are_counted_by_reason_from_zero() -> None:
    metrics = Metrics()
    before = _samples(metrics)
    for reason in REJECT_REASONS:  # every reason is exposed before the first rejection
        assert _value(before, "eventtrigger_jobs_rejected_total", reason=reason) == 0
    metrics.jobs_rejected.labels("bad_url").inc()
    metrics.jobs_rejected.labels("bad_url").inc()
    after = _samples(metrics)
    assert _value(after, "eventtrigger_jobs_rejected_total", reason="bad_url") == 2
    assert _value(after, "eventtrigger_jobs_rejected_total", reason="not_json") == 0
