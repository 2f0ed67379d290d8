"""The Grafana dashboard (docs/grafana/eventtrigger.json) names only metrics we export.

Every metric name in every panel target's `expr` (and in the template variables' queries)
must be a sample name of a real `Metrics()` registry: counters as `<name>_total`,
histograms as `<name>_bucket` / `_sum` / `_count`. The one exception is `up`, which
Prometheus itself adds for every scraped target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eventtrigger.observability.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "eventtrigger.json"
DATASOURCE = "${DS_PROMETHEUS}"
# Series Prometheus writes for each scrape target, not exported by any process.
SCRAPE_SERIES = frozenset({"up"})
PROMQL_WORDS = frozenset(
    {
        # aggregation and grouping
        "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
        "quantile", "count_values", "group", "by", "without", "on", "ignoring",
        "group_left", "group_right", "bool", "and", "or", "unless", "offset", "le",
        # functions
        "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile",
        "clamp_min", "clamp_max", "clamp", "abs", "ceil", "floor", "round", "vector",
        "scalar", "time", "absent", "label_replace", "label_join", "label_values",
        "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
        "count_over_time", "last_over_time", "resets", "changes", "sort", "sort_desc",
        # literals
        "inf", "nan",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers (after Grafana variables are gone)
_RANGE = re.compile(r"\[[^\]]*\]")  # [5m], [$__rate_interval]
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\w)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside strings, label matchers,
    ranges and grouping lists that are neither a function call nor a PromQL word."""
    text = _STRING.sub(" ", expr)
    text = _RANGE.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def exported_names() -> set[str]:
    """Every sample name a fresh registry exposes, as the runner builds it."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names |= {family.name, f"{family.name}_total"}
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))}
        else:
            names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable."""
    found = [
        (f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"])
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and isinstance(text, str):
            inner = re.fullmatch(r"\s*label_values\((.*)\)\s*", text)
            if inner is not None:  # label_values(<series>, <label>): the label is no metric
                text = inner.group(1).rsplit(",", 1)[0] if "," in inner.group(1) else ""
            found.append((f"variable {var.get('name')!r}", text))
    return found


def unknown_metrics(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, expr in _exprs(dashboard)
        for name in metric_names(expr)
        if name not in exported and name not in SCRAPE_SERIES
    )


# ---- the extractor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (outcome) (rate(a_total{job=~"$job", x="y"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m])))", {"b_bucket"}),
        ("100 * sum(rate(c_total[5m])) / clamp_min(sum(rate(d_total[5m])), 1e-9)", {"c_total", "d_total"}),
        ("up", {"up"}),
        ("max without (instance) (e) + on (job) group_left (f) g", {"e", "g"}),
    ],
)  # fmt: skip
def test_metric_names_are_extracted(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_a_bogus_metric_is_reported() -> None:
    dashboard = _dashboard()
    dashboard["panels"][0]["targets"].append(
        {"refId": "Z", "expr": "sum(rate(eventtrigger_no_such_thing_total[5m]))"}
    )
    assert unknown_metrics(dashboard, exported_names()) == [
        f"panel {dashboard['panels'][0]['title']!r} target Z: eventtrigger_no_such_thing_total"
    ]


# ---- the dashboard ----------------------------------------------------------------------


def test_every_metric_in_the_dashboard_is_exported() -> None:
    dashboard = _dashboard()
    used = {name for _, expr in _exprs(dashboard) for name in metric_names(expr)}
    assert used, "no metric names found: is the extractor broken?"
    assert unknown_metrics(dashboard, exported_names()) == []


def test_the_registry_has_no_process_collector() -> None:
    """The dashboard shows no process_* panels because the registry has none; if that
    changes, add RSS/CPU panels (process_resident_memory_bytes, process_cpu_seconds_total)."""
    assert not any(name.startswith("process_") for name in exported_names())


def test_dashboard_identity_and_datasource_input() -> None:
    dashboard = _dashboard()
    assert isinstance(dashboard.get("uid"), str) and dashboard["uid"]
    assert isinstance(dashboard.get("title"), str) and dashboard["title"]
    assert dashboard["schemaVersion"] == 39
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"


def test_every_panel_uses_the_prometheus_input() -> None:
    dashboard = _dashboard()
    panels = _panels(dashboard)
    assert panels
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == DATASOURCE
