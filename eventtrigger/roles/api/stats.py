"""`GET /api/v1/stats`: the snapshot's figures as JSON, plus this process's counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain.times import iso
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import json_response


def _counter(counter: Counter) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def stats_json(res: Resources) -> dict[str, Any]:
    snap = res.stats.latest
    return {
        "as_of": None if snap.as_of is None else iso(snap.as_of),
        "triggers": {
            "by_type": snap.triggers,
            "total": sum(sum(s.values()) for s in snap.triggers.values()),
        },
        "jobs": snap.jobs,
        "events": snap.events,
        "outcomes": snap.outcomes,
        "fire_lateness_seconds": snap.fire_lateness,
        "delivery_latency_seconds": snap.delivery_latency,
        "latest_failures": snap.latest_failures,
        "this_process": {
            "jobs_processed": _counter(res.metrics.jobs_processed),
            "delivery_attempts": _counter(res.metrics.delivery_attempts),
        },
    }


async def stats(request: Request, res: Resources) -> Response:
    return json_response(stats_json(res))
