"""A webhook trigger's `config.ingest_rate_limit` (validated, normalised, in OpenAPI) and
the per-address ingest settings (EVENTTRIGGER_INGEST_IP_RATE/_BURST, _TRUSTED_PROXIES).

Pure: `now` is fixed; settings come from an explicit environment, never the process's.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest

from eventtrigger.config import Settings, SettingsError, load_settings
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.ratelimit import Rate
from eventtrigger.domain.triggers import (
    Limits,
    ingest_rate,
    normalise_config,
    validate_create,
    validate_patch,
)
from eventtrigger.roles.api.openapi import openapi_document

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENDPOINT = "https://example.com/hook"
WEBHOOK = {"endpoint": ENDPOINT, "schema": {"type": "object"}}


def errors_of(kind: str, config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        normalise_config(kind, config, NOW, Limits())
    return {e.field: e.message for e in caught.value.errors}


def test_a_webhook_limit_is_kept_with_the_config() -> None:
    config = normalise_config(
        "webhook", {**WEBHOOK, "ingest_rate_limit": {"per_second": 2.5, "burst": 10}}, NOW, Limits()
    )
    assert config["ingest_rate_limit"] == {"per_second": 2.5, "burst": 10}
    assert ingest_rate(config) == Rate(2.5, 10)


def test_a_burst_written_as_a_float_is_stored_as_an_integer() -> None:
    config = normalise_config(
        "webhook", {**WEBHOOK, "ingest_rate_limit": {"per_second": 1, "burst": 3.0}}, NOW, Limits()
    )
    assert config["ingest_rate_limit"]["burst"] == 3
    assert isinstance(config["ingest_rate_limit"]["burst"], int)


def test_no_limit_by_default() -> None:
    config = normalise_config("webhook", WEBHOOK, NOW, Limits())
    assert "ingest_rate_limit" not in config
    assert ingest_rate(config) is None


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({"per_second": 0, "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": -1, "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": "10", "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": True, "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": 1e-9, "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": 5e-324, "burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": 1, "burst": 0}, "config.ingest_rate_limit.burst"),
        ({"per_second": 1, "burst": 1.5}, "config.ingest_rate_limit.burst"),
        ({"per_second": 1}, "config.ingest_rate_limit.burst"),
        ({"burst": 1}, "config.ingest_rate_limit.per_second"),
        ({"per_second": 1, "burst": 1, "window": 5}, "config.ingest_rate_limit.window"),
        (5, "config.ingest_rate_limit"),
        (None, "config.ingest_rate_limit"),
    ],
)
def test_a_bad_limit_is_refused_naming_its_field(limit: Any, field: str) -> None:
    assert field in errors_of("webhook", {**WEBHOOK, "ingest_rate_limit": limit})


@pytest.mark.parametrize("kind", ["time_scheduled", "cron_scheduled", "interval_scheduled"])
def test_only_webhook_triggers_take_a_limit(kind: str) -> None:
    config = {
        "time_scheduled": {"endpoint": ENDPOINT, "run_in": "1h"},
        "cron_scheduled": {"endpoint": ENDPOINT, "cron": "* * * * *"},
        "interval_scheduled": {"endpoint": ENDPOINT, "every": "1m"},
    }[kind]
    limit = {"per_second": 1, "burst": 1}
    found = errors_of(kind, {**config, "ingest_rate_limit": limit})
    assert found == {"config.ingest_rate_limit": "only webhook triggers take an ingest rate limit"}


def test_create_and_patch_report_the_limit_with_every_other_error() -> None:
    body = {
        "name": "",
        "type": "webhook",
        "config": {**WEBHOOK, "ingest_rate_limit": {"per_second": 1, "burst": 0}},
    }
    with pytest.raises(InvalidInput) as caught:
        validate_create(body, NOW, Limits())
    fields = {e.field for e in caught.value.errors}
    assert {"name", "config.ingest_rate_limit.burst"} <= fields
    patch = {"config": {**WEBHOOK, "ingest_rate_limit": {"per_second": 0, "burst": 1}}}
    with pytest.raises(InvalidInput) as caught:
        validate_patch(patch, "webhook", NOW, Limits())
    assert [e.field for e in caught.value.errors] == ["config.ingest_rate_limit.per_second"]


def test_the_openapi_document_carries_the_limit_schema() -> None:
    document = openapi_document("http://localhost:8080")
    webhook = document["components"]["schemas"]["WebhookConfig"]["properties"]
    limit = webhook["ingest_rate_limit"]
    assert limit["required"] == ["per_second", "burst"]
    assert limit["properties"]["per_second"]["exclusiveMinimum"] == 0
    assert limit["properties"]["burst"]["minimum"] == 1
    cron = document["components"]["schemas"]["CronScheduledConfig"]["properties"]
    assert "ingest_rate_limit" not in cron


def load(**env: str) -> Settings:
    return load_settings({f"EVENTTRIGGER_{k}": v for k, v in env.items()}, env_file=None)


def test_per_address_defaults() -> None:
    """Off by default: one sender may legitimately burst past any fixed figure."""
    settings = load()
    assert settings.ingest_ip_rate == 0
    assert settings.ingest_ip_burst == 400
    assert settings.trusted_proxies == ()


def test_per_address_settings_are_read() -> None:
    settings = load(
        INGEST_IP_RATE="0.5", INGEST_IP_BURST="7", TRUSTED_PROXIES="10.0.0.0/8, fd00::/8"
    )
    assert settings.ingest_ip_rate == 0.5
    assert settings.ingest_ip_burst == 7
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert load(INGEST_IP_RATE="0").ingest_ip_rate == 0  # off


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INGEST_IP_RATE", "-1"),
        ("INGEST_IP_RATE", "fast"),
        ("INGEST_IP_RATE", "nan"),
        ("INGEST_IP_RATE", "inf"),
        ("INGEST_IP_RATE", "1e-9"),
        ("INGEST_IP_BURST", "0"),
        ("INGEST_IP_BURST", "1.5"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
    ],
)
def test_bad_per_address_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(**{name: value})
    assert caught.value.variable == f"EVENTTRIGGER_{name}"
