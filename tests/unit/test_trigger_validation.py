"""Trigger bodies: validate_create / validate_patch / normalise_config for all four types.

Pure: `now` is fixed, limits are passed in; no database, no network.
"""

from __future__ import annotations

import copy
import http.server
import ipaddress
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.triggers import (
    Limits,
    TriggerPatch,
    first_fire,
    normalise_config,
    validate_create,
    validate_patch,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits()
ALLOW_LOOPBACK = Limits(egress_allow=(ipaddress.ip_network("127.0.0.0/8"),))
ENDPOINT = "https://example.com/hook"
KINDS = ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled")

MINIMAL: dict[str, dict[str, Any]] = {
    "webhook": {"endpoint": ENDPOINT, "schema": {"type": "object"}},
    "time_scheduled": {"endpoint": ENDPOINT, "run_at": "2026-01-02T00:00:00Z"},
    "cron_scheduled": {"endpoint": ENDPOINT, "cron": "*/5 * * * *"},
    "interval_scheduled": {"endpoint": ENDPOINT, "every": "30s"},
}
DEFAULTS: dict[str, Any] = {
    "endpoint": ENDPOINT,
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
}
NORMALISED_MINIMAL: dict[str, dict[str, Any]] = {
    "webhook": {**DEFAULTS, "schema": {"type": "object"}},
    "time_scheduled": {**DEFAULTS, "run_at": "2026-01-02T00:00:00Z", "payload": None},
    "cron_scheduled": {**DEFAULTS, "cron": "*/5 * * * *", "timezone": "UTC", "payload": None},
    "interval_scheduled": {
        **DEFAULTS,
        "every": "30s",
        "start_at": "2026-01-01T00:00:00Z",
        "payload": None,
    },
}


def config_of(kind: str, **changes: Any) -> dict[str, Any]:
    """The minimal config of `kind` with `changes` applied (a value of ... removes the key)."""
    config = copy.deepcopy(MINIMAL[kind])
    for key, value in changes.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def body_of(kind: str, **changes: Any) -> dict[str, Any]:
    return {"name": "my trigger", "type": kind, "config": config_of(kind, **changes)}


def create_errors(body: Any, now: datetime = NOW, limits: Limits = LIMITS) -> dict[str, str]:
    """{field: message} of the InvalidInput that validate_create must raise."""
    with pytest.raises(InvalidInput) as info:
        validate_create(body, now, limits)
    errors = info.value.errors
    assert errors, "InvalidInput without errors"
    assert all(isinstance(e, FieldError) for e in errors)
    found: dict[str, str] = {}
    for e in errors:  # several messages for one field are joined, none is lost
        found[e.field] = f"{found[e.field]}; {e.message}" if e.field in found else e.message
    return found


def config_errors(
    kind: str, now: datetime = NOW, limits: Limits = LIMITS, **changes: Any
) -> dict[str, str]:
    return create_errors(body_of(kind, **changes), now, limits)


def normalised(kind: str, now: datetime = NOW, limits: Limits = LIMITS, **changes: Any) -> Any:
    return validate_create(body_of(kind, **changes), now, limits).config


# --------------------------------------------------------------------------------------------
# Valid bodies and their normalised form
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_body_normalised_with_defaults(kind: str) -> None:
    result = validate_create(body_of(kind), NOW, LIMITS)
    assert result.name == "my trigger"
    assert result.type == kind
    assert result.status == "active"
    assert result.config == NORMALISED_MINIMAL[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_status_paused_accepted(kind: str) -> None:
    body = {**body_of(kind), "status": "paused"}
    assert validate_create(body, NOW, LIMITS).status == "paused"


@pytest.mark.parametrize("kind", KINDS)
def test_input_is_not_mutated(kind: str) -> None:
    body = body_of(kind, retry={"max_attempts": 3})
    before = copy.deepcopy(body)
    validate_create(body, NOW, LIMITS)
    assert body == before


def test_full_common_config_kept_and_durations_canonical() -> None:
    config = normalised(
        "cron_scheduled",
        method="PUT",
        headers={"Authorization": "Bearer abc", "X-Trace": "1"},
        timeout="1500ms",
        retry={"max_attempts": 3, "initial_delay": "0.5s", "max_delay": "120s"},
        timezone="Europe/Berlin",
        payload={"hello": ["world", 1, None]},
    )
    assert config == {
        "endpoint": ENDPOINT,
        "method": "PUT",
        "headers": {"Authorization": "Bearer abc", "X-Trace": "1"},
        "timeout": "1500ms",
        "retry": {"max_attempts": 3, "initial_delay": "500ms", "max_delay": "2m"},
        "cron": "*/5 * * * *",
        "timezone": "Europe/Berlin",
        "payload": {"hello": ["world", 1, None]},
    }


@pytest.mark.parametrize(
    ("timeout", "expected"), [(30, "30s"), ("120s", "2m"), ("0.1", "100ms"), (" 5s ", "5s")]
)
def test_timeout_normalised(timeout: Any, expected: str) -> None:
    assert normalised("interval_scheduled", timeout=timeout)["timeout"] == expected


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ({}, {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"}),
        ({"max_attempts": 3}, {"max_attempts": 3, "initial_delay": "2s", "max_delay": "5m"}),
        (
            {"initial_delay": "500ms"},
            {"max_attempts": 5, "initial_delay": "500ms", "max_delay": "5m"},
        ),
        ({"max_delay": "10m"}, {"max_attempts": 5, "initial_delay": "2s", "max_delay": "10m"}),
        ({"max_attempts": 1}, {"max_attempts": 1, "initial_delay": "2s", "max_delay": "5m"}),
        ({"max_attempts": 20}, {"max_attempts": 20, "initial_delay": "2s", "max_delay": "5m"}),
    ],
)
def test_partial_retry_takes_defaults(retry: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalised("webhook", retry=retry)["retry"] == expected


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_every_method_accepted(method: str) -> None:
    assert normalised("webhook", method=method)["method"] == method


def test_payload_defaults_to_null_and_is_kept() -> None:
    assert normalised("interval_scheduled")["payload"] is None
    assert normalised("interval_scheduled", payload=[1, "two"])["payload"] == [1, "two"]
    assert normalised("time_scheduled", payload="text")["payload"] == "text"


# --------------------------------------------------------------------------------------------
# Unknown, missing and malformed top-level fields
# --------------------------------------------------------------------------------------------


def test_body_not_an_object() -> None:
    errors = create_errors(["not", "an", "object"])
    assert list(errors) == [""]


def test_unknown_top_level_field_with_hint() -> None:
    body = {**body_of("webhook"), "stauts": "paused"}
    errors = create_errors(body)
    assert list(errors) == ["stauts"]
    assert "unknown field 'stauts'" in errors["stauts"]
    assert "did you mean 'status'" in errors["stauts"]


def test_unknown_config_field_with_hint() -> None:
    errors = config_errors("webhook", endpoint=..., endpont=ENDPOINT)
    assert "unknown field 'endpont'" in errors["config.endpont"]
    assert "did you mean 'endpoint'" in errors["config.endpont"]
    assert errors["config.endpoint"] == "is required"


def test_unknown_retry_field_with_hint() -> None:
    errors = config_errors("cron_scheduled", retry={"max_attempt": 3})
    assert list(errors) == ["config.retry.max_attempt"]
    assert "did you mean 'max_attempts'" in errors["config.retry.max_attempt"]


def test_unknown_field_without_close_match_has_no_hint() -> None:
    errors = config_errors("webhook", zzzzzz=1)
    assert errors["config.zzzzzz"] == "unknown field 'zzzzzz'"


@pytest.mark.parametrize(
    ("kind", "foreign"),
    [
        ("interval_scheduled", {"cron": "* * * * *"}),
        ("cron_scheduled", {"every": "1m"}),
        ("webhook", {"run_at": "2026-01-02T00:00:00Z"}),
        ("time_scheduled", {"schema": {}}),
        ("webhook", {"payload": 1}),
    ],
)
def test_field_of_another_type_is_unknown(kind: str, foreign: dict[str, Any]) -> None:
    (name,) = foreign
    errors = config_errors(kind, **foreign)
    assert f"config.{name}" in errors
    assert errors[f"config.{name}"].startswith(f"unknown field '{name}'")


@pytest.mark.parametrize("missing", ["name", "type", "config"])
def test_missing_top_level_field(missing: str) -> None:
    body = body_of("webhook")
    del body[missing]
    errors = create_errors(body)
    assert errors[missing] == "is required"


@pytest.mark.parametrize("kind", KINDS)
def test_missing_endpoint(kind: str) -> None:
    assert config_errors(kind, endpoint=...) == {"config.endpoint": "is required"}


@pytest.mark.parametrize(
    ("kind", "field"),
    [("webhook", "schema"), ("cron_scheduled", "cron"), ("interval_scheduled", "every")],
)
def test_missing_type_specific_required_field(kind: str, field: str) -> None:
    errors = config_errors(kind, **{field: ...})
    assert errors[f"config.{field}"] == "is required"


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_name_length_out_of_range(name: str) -> None:
    errors = create_errors({**body_of("webhook"), "name": name})
    assert list(errors) == ["name"]


@pytest.mark.parametrize("name", ["x", "x" * 200, "späť ☃ 名前"])
def test_name_length_in_range(name: str) -> None:
    assert validate_create({**body_of("webhook"), "name": name}, NOW, LIMITS).name == name


@pytest.mark.parametrize("name", [None, 42, ["a"]])
def test_name_must_be_a_string(name: Any) -> None:
    assert list(create_errors({**body_of("webhook"), "name": name})) == ["name"]


@pytest.mark.parametrize("kind", ["nope", "WEBHOOK", "cron", "", None, 1])
def test_bad_type(kind: Any) -> None:
    body = {"name": "t", "type": kind, "config": MINIMAL["webhook"]}
    assert list(create_errors(body)) == ["type"]


@pytest.mark.parametrize("status", ["completed", "ACTIVE", "running", None])
def test_bad_status(status: Any) -> None:
    errors = create_errors({**body_of("webhook"), "status": status})
    assert list(errors) == ["status"]


@pytest.mark.parametrize("config", [None, "text", [], 1])
def test_config_must_be_an_object(config: Any) -> None:
    errors = create_errors({"name": "t", "type": "webhook", "config": config})
    assert list(errors) == ["config"]


# --------------------------------------------------------------------------------------------
# Endpoint, method, headers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/hook", "http or https"),
        ("example.com/hook", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http:///path-only", "needs a host"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("https://token@example.com/hook", "credentials"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "spaces"),
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://api.localhost/hook", "loopback"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://100.64.0.1/", "reserved"),
        ("http://0.0.0.0/", "0.0.0.0 is a"),
    ],
)
def test_bad_endpoint(url: str, fragment: str) -> None:
    errors = config_errors("webhook", endpoint=url)
    assert list(errors) == ["config.endpoint"]
    assert fragment in errors["config.endpoint"]


@pytest.mark.parametrize("url", ["", "x" * 2049])
def test_endpoint_length(url: str) -> None:
    assert list(config_errors("webhook", endpoint=url)) == ["config.endpoint"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com:8443/a/b?c=d#e",
        "http://8.8.8.8/hook",  # public IP literal
        "http://[2606:4700::1111]/hook",
        "http://internal.corp/hook",  # DNS names are checked at connect time
    ],
)
def test_good_endpoint(url: str) -> None:
    assert normalised("webhook", endpoint=url)["endpoint"] == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost:8080/hook", "http://127.9.9.9/"]
)
def test_loopback_endpoint_allowed_by_egress_allow_list(url: str) -> None:
    with pytest.raises(InvalidInput):
        validate_create(body_of("webhook", endpoint=url), NOW, LIMITS)
    config = validate_create(body_of("webhook", endpoint=url), NOW, ALLOW_LOOPBACK).config
    assert config["endpoint"] == url


def test_allow_list_does_not_open_other_private_ranges() -> None:
    errors = config_errors("webhook", limits=ALLOW_LOOPBACK, endpoint="http://10.0.0.1/")
    assert "private" in errors["config.endpoint"]


@pytest.mark.parametrize("method", ["get", "CONNECT", "HEAD", "OPTIONS", "TRACE", "", 1])
def test_bad_method(method: Any) -> None:
    assert list(config_errors("webhook", method=method)) == ["config.method"]


def test_header_value_must_be_a_string() -> None:
    errors = config_errors("webhook", headers={"X-Count": 3})
    assert list(errors) == ["config.headers.X-Count"]


def test_headers_must_be_an_object() -> None:
    assert list(config_errors("webhook", headers=["X-A: b"])) == ["config.headers"]


@pytest.mark.parametrize("name", ["Bad Header", "X:Y", "X-Ünïcode", "X(1)", "X-Foo\n", "\nX"])
def test_invalid_header_name(name: str) -> None:
    errors = config_errors("webhook", headers={name: "v"})
    assert errors == {f"config.headers.{name}": "not a valid header name"}


@pytest.mark.parametrize(
    "name",
    [
        "webhook-signature",
        "Webhook-Signature",
        "webhook-id",
        "webhook-timestamp",
        "host",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
    ],
)
def test_reserved_header(name: str) -> None:
    errors = config_errors("webhook", headers={name: "x"})
    assert list(errors) == [f"config.headers.{name}"]
    assert "set by eventtrigger" in errors[f"config.headers.{name}"]


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb"])
def test_header_value_line_breaks_rejected(value: str) -> None:
    errors = config_errors("webhook", headers={"X-Ok": value})
    assert list(errors) == ["config.headers.X-Ok"]
    assert "line breaks" in errors["config.headers.X-Ok"]


def test_ordinary_headers_accepted() -> None:
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json", "X-A.b_c~": ""}
    assert normalised("webhook", headers=headers)["headers"] == headers


# --------------------------------------------------------------------------------------------
# Timeout and retry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "fragment"),
    [
        ("99ms", "at least 100ms"),
        (0, "at least 100ms"),
        (0.05, "at least 100ms"),
        ("121s", "at most 2m"),
        ("3m", "at most 2m"),
        (121, "at most 2m"),
        ("soon", "is not a duration"),
        (-1, "negative"),
    ],
)
def test_bad_timeout(timeout: Any, fragment: str) -> None:
    errors = config_errors("webhook", timeout=timeout)
    assert list(errors) == ["config.timeout"]
    assert fragment in errors["config.timeout"]


@pytest.mark.parametrize("timeout", [True, None, [], {}])
def test_timeout_wrong_json_type(timeout: Any) -> None:
    assert list(config_errors("webhook", timeout=timeout)) == ["config.timeout"]


@pytest.mark.parametrize(
    ("timeout", "expected"), [("100ms", "100ms"), ("2m", "2m"), (120, "2m"), (0.1, "100ms")]
)
def test_timeout_bounds_inclusive(timeout: Any, expected: str) -> None:
    assert normalised("webhook", timeout=timeout)["timeout"] == expected


@pytest.mark.parametrize("timeout", [1e300, "999999999999d"])
def test_absurd_timeout_is_a_field_error_not_a_crash(timeout: Any) -> None:
    # A huge (but valid JSON / valid grammar) duration must give 400, not an OverflowError.
    assert list(config_errors("webhook", timeout=timeout)) == ["config.timeout"]


@pytest.mark.parametrize("attempts", [0, 21, -1, "5", 2.5, True, None])
def test_bad_max_attempts(attempts: Any) -> None:
    errors = config_errors("webhook", retry={"max_attempts": attempts})
    assert list(errors) == ["config.retry.max_attempts"]


def test_max_attempts_as_integral_float_does_not_crash() -> None:
    # JSON Schema counts 5.0 as an integer. Either reject it as a field error or store
    # the int 5; an uncaught TypeError (a 500) is wrong.
    try:
        config = normalised("webhook", retry={"max_attempts": 5.0})
    except InvalidInput as exc:
        assert [e.field for e in exc.errors] == ["config.retry.max_attempts"]
    else:
        assert config["retry"]["max_attempts"] == 5
        assert type(config["retry"]["max_attempts"]) is int


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ({"initial_delay": "99ms"}, {"config.retry.initial_delay": "at least 100ms"}),
        ({"initial_delay": "later"}, {"config.retry.initial_delay": "is not a duration"}),
        (
            {"initial_delay": "2h", "max_delay": "2h"},
            {"config.retry.initial_delay": "at most 1h", "config.retry.max_delay": "at most 1h"},
        ),
        ({"max_delay": "61m"}, {"config.retry.max_delay": "at most 1h"}),
        ({"max_delay": "99ms"}, {"config.retry.max_delay": "at least 100ms"}),
        ({"max_delay": "1s"}, {"config.retry.max_delay": "shorter than initial_delay"}),
        (
            {"initial_delay": "10s", "max_delay": "5s"},
            {"config.retry.max_delay": "shorter than initial_delay"},
        ),
    ],
)
def test_bad_retry_delays(retry: dict[str, Any], expected: dict[str, str]) -> None:
    errors = config_errors("webhook", retry=retry)
    assert set(errors) == set(expected)
    for field, fragment in expected.items():
        assert fragment in errors[field]


def test_retry_not_an_object() -> None:
    assert list(config_errors("webhook", retry=5)) == ["config.retry"]


def test_equal_initial_and_max_delay_accepted() -> None:
    retry = {"initial_delay": "10s", "max_delay": "10s"}
    assert normalised("webhook", retry=retry)["retry"]["max_delay"] == "10s"


def test_retry_span_longer_than_active_window_rejected() -> None:
    small = Limits(retention_active=timedelta(minutes=1))
    # defaults: waits 2+4+8+16 s at +20% jitter = 36 s, plus 5 timeouts of 10 s = 86 s > 1 m
    errors = config_errors("webhook", limits=small)
    assert list(errors) == ["config.retry"]
    assert "86s" in errors["config.retry"]
    assert "active window (1m)" in errors["config.retry"]


def test_retry_span_long_policy_rejected_with_default_window() -> None:
    retry = {"max_attempts": 20, "initial_delay": "1h", "max_delay": "1h"}
    errors = config_errors("webhook", retry=retry)
    assert list(errors) == ["config.retry"]


def test_retry_span_that_fits_accepted() -> None:
    small = Limits(retention_active=timedelta(minutes=1))
    config = normalised("webhook", limits=small, retry={"max_attempts": 1})
    assert config["retry"]["max_attempts"] == 1


# --------------------------------------------------------------------------------------------
# time_scheduled
# --------------------------------------------------------------------------------------------


def test_run_in_resolved_to_run_at() -> None:
    config = normalised("time_scheduled", run_at=..., run_in="10m")
    assert config["run_at"] == "2026-01-01T00:10:00Z"
    assert "run_in" not in config


@pytest.mark.parametrize(
    ("run_in", "run_at"),
    [
        (90, "2026-01-01T00:01:30Z"),
        ("1d", "2026-01-02T00:00:00Z"),
        ("250ms", "2026-01-01T00:00:00.250000Z"),
        ("0s", "2026-01-01T00:00:00Z"),  # fires right away
    ],
)
def test_run_in_values(run_in: Any, run_at: str) -> None:
    config = normalised("time_scheduled", run_at=..., run_in=run_in)
    assert config["run_at"] == run_at
    assert "run_in" not in config


def test_run_in_relative_to_the_given_now() -> None:
    now = datetime(2026, 6, 15, 12, 30, 45, 123000, tzinfo=UTC)
    config = normalised("time_scheduled", now=now, run_at=..., run_in="5m")
    assert config["run_at"] == "2026-06-15T12:35:45.123000Z"


@pytest.mark.parametrize(
    ("run_at", "expected"),
    [
        ("2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00Z"),
        ("2026-03-01T12:00:00-05:30", "2026-03-01T17:30:00Z"),
        ("2026-03-01T10:00:00+00:00", "2026-03-01T10:00:00Z"),
        ("2026-03-01t10:00:00z", "2026-03-01T10:00:00Z"),
        ("2026-03-01 10:00:00Z", "2026-03-01T10:00:00Z"),
        ("2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.500000Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),  # exactly now is not the past
    ],
)
def test_run_at_normalised_to_utc_z(run_at: str, expected: str) -> None:
    assert normalised("time_scheduled", run_at=run_at)["run_at"] == expected


def test_both_run_at_and_run_in() -> None:
    errors = config_errors("time_scheduled", run_in="10m")
    assert list(errors) == ["config.run_at"]
    assert "exactly one of run_at or run_in" in errors["config.run_at"]


def test_neither_run_at_nor_run_in() -> None:
    errors = config_errors("time_scheduled", run_at=...)
    assert list(errors) == ["config.run_at"]
    assert "exactly one of run_at or run_in" in errors["config.run_at"]


@pytest.mark.parametrize(
    "run_at",
    [
        "2026-03-01T10:00:00",  # no offset
        "2026-03-01",
        "2026-03-01T10:00Z",
        "tomorrow",
        "1767225600",
        "2026-03-01T10:00:00+0200",
    ],
)
def test_run_at_without_offset_or_malformed(run_at: str) -> None:
    errors = config_errors("time_scheduled", run_at=run_at)
    assert list(errors) == ["config.run_at"]
    assert "offset" in errors["config.run_at"]


@pytest.mark.parametrize("run_at", ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z"])
def test_run_at_impossible_date(run_at: str) -> None:
    errors = config_errors("time_scheduled", run_at=run_at)
    assert list(errors) == ["config.run_at"]
    assert "not a valid time" in errors["config.run_at"]


def test_run_at_not_a_string() -> None:
    assert list(config_errors("time_scheduled", run_at=1767225600)) == ["config.run_at"]


@pytest.mark.parametrize(
    "run_at", ["2025-12-31T23:59:59Z", "2026-01-01T01:59:59+02:00", "2020-01-01T00:00:00Z"]
)
def test_run_at_in_the_past(run_at: str) -> None:
    errors = config_errors("time_scheduled", run_at=run_at)
    assert errors == {"config.run_at": "is in the past"}


@pytest.mark.parametrize(("run_in", "fragment"), [("soon", "not a duration"), (-5, "negative")])
def test_bad_run_in(run_in: Any, fragment: str) -> None:
    errors = config_errors("time_scheduled", run_at=..., run_in=run_in)
    assert list(errors) == ["config.run_in"]
    assert fragment in errors["config.run_in"]


def test_run_in_beyond_the_calendar_is_a_field_error_not_a_crash() -> None:
    # 10 million days is a valid timedelta but now + it overflows datetime: must be a 400.
    errors = config_errors("time_scheduled", run_at=..., run_in="10000000d")
    assert list(errors) == ["config.run_in"]


def test_run_at_at_the_end_of_the_calendar_is_a_field_error_not_a_crash() -> None:
    # Valid RFC 3339, but in UTC it is year 10000: must be a 400, not an OverflowError.
    errors = config_errors("time_scheduled", run_at="9999-12-31T23:59:59-01:00")
    assert list(errors) == ["config.run_at"]


# --------------------------------------------------------------------------------------------
# cron_scheduled
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("*/10 * * * * *", "*/10 * * * * *"),  # 6 fields, seconds first
        ("0 30 2 * * *", "0 30 2 * * *"),
        ("  */5   *  * * *  ", "*/5 * * * *"),  # whitespace collapsed
    ],
)
def test_cron_accepted(cron: str, expected: str) -> None:
    config = normalised("cron_scheduled", cron=cron)
    assert config["cron"] == expected
    assert config["timezone"] == "UTC"


@pytest.mark.parametrize(
    "cron",
    [
        "not a cron",
        "* * * *",  # 4 fields
        "* * * * * * *",  # 7 fields
        "61 * * * *",
        "* 24 * * *",
        "0 0 30 2 *",  # never fires
        "60 * * * * *",  # seconds field out of range
        "",
    ],
)
def test_invalid_cron(cron: str) -> None:
    errors = config_errors("cron_scheduled", cron=cron)
    assert list(errors) == ["config.cron"]
    assert errors["config.cron"]


def test_cron_not_a_string() -> None:
    assert list(config_errors("cron_scheduled", cron=5)) == ["config.cron"]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_timezone_accepted(tz: str) -> None:
    assert normalised("cron_scheduled", timezone=tz)["timezone"] == tz


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd", "Europe/", "+02:00"])
def test_bad_timezone(tz: str) -> None:
    errors = config_errors("cron_scheduled", timezone=tz)
    assert list(errors) == ["config.timezone"]
    assert "IANA" in errors["config.timezone"]


def test_cron_bounds_normalised() -> None:
    config = normalised(
        "cron_scheduled",
        start_at="2026-02-01T02:00:00+02:00",
        end_at="2026-03-01T00:00:00-01:00",
    )
    assert config["start_at"] == "2026-02-01T00:00:00Z"
    assert config["end_at"] == "2026-03-01T01:00:00Z"


@pytest.mark.parametrize("kind", ["cron_scheduled", "interval_scheduled"])
@pytest.mark.parametrize(
    ("start_at", "end_at"),
    [
        ("2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z"),  # equal
        ("2026-02-01T00:00:00Z", "2026-01-15T00:00:00Z"),  # before
        ("2026-02-01T01:00:00+01:00", "2026-02-01T00:00:00Z"),  # equal instants
    ],
)
def test_start_at_not_before_end_at(kind: str, start_at: str, end_at: str) -> None:
    errors = config_errors(kind, start_at=start_at, end_at=end_at)
    assert list(errors) == ["config.end_at"]
    assert "after start_at" in errors["config.end_at"]


@pytest.mark.parametrize("kind", ["cron_scheduled", "interval_scheduled"])
def test_end_at_in_the_past_has_no_future_occurrence(kind: str) -> None:
    errors = config_errors(kind, end_at="2025-12-31T00:00:00Z")
    assert errors == {"config.end_at": "the schedule has no future occurrence"}


def test_end_at_before_next_cron_occurrence() -> None:
    # yearly on 1 Jan 00:00; now is exactly that instant, so the next one is 2027
    errors = config_errors("cron_scheduled", cron="0 0 1 1 *", end_at="2026-06-01T00:00:00Z")
    assert errors == {"config.end_at": "the schedule has no future occurrence"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("start_at", "2026-02-01T00:00:00"), ("end_at", "next week"), ("start_at", 5)],
)
def test_bad_bound_times(field: str, value: Any) -> None:
    errors = config_errors("cron_scheduled", **{field: value})
    assert list(errors) == [f"config.{field}"]


# --------------------------------------------------------------------------------------------
# interval_scheduled
# --------------------------------------------------------------------------------------------


def test_interval_anchor_defaults_to_now() -> None:
    now = datetime(2026, 1, 1, 8, 15, 30, 250000, tzinfo=UTC)
    config = normalised("interval_scheduled", now=now)
    assert config["start_at"] == "2026-01-01T08:15:30.250000Z"


@pytest.mark.parametrize(
    ("start_at", "expected"),
    [
        ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),  # a past anchor only sets the phase
        ("2026-01-05T12:00:00+02:00", "2026-01-05T10:00:00Z"),
    ],
)
def test_interval_explicit_anchor_normalised(start_at: str, expected: str) -> None:
    assert normalised("interval_scheduled", start_at=start_at)["start_at"] == expected


@pytest.mark.parametrize(
    ("every", "expected"),
    [("1s", "1s"), (1, "1s"), ("90", "90s"), ("60s", "1m"), ("1.5s", "1500ms"), ("24h", "1d")],
)
def test_every_normalised(every: Any, expected: str) -> None:
    assert normalised("interval_scheduled", every=every)["every"] == expected


@pytest.mark.parametrize(
    ("every", "fragment"),
    [
        ("0.5s", "at least 1s"),
        ("999ms", "at least 1s"),
        (0.5, "at least 1s"),
        (0, "at least 1s"),
        ("0s", "at least 1s"),
        ("every minute", "is not a duration"),
        ("1x", "is not a duration"),
        (-60, "negative"),
    ],
)
def test_bad_every(every: Any, fragment: str) -> None:
    errors = config_errors("interval_scheduled", every=every)
    assert list(errors) == ["config.every"]
    assert fragment in errors["config.every"]


@pytest.mark.parametrize("every", [True, None, [], {"s": 1}])
def test_every_wrong_json_type(every: Any) -> None:
    assert list(config_errors("interval_scheduled", every=every)) == ["config.every"]


# --------------------------------------------------------------------------------------------
# First firing (as computed at save time)
# --------------------------------------------------------------------------------------------


def test_first_fire_interval_without_anchor_is_one_every_after_now() -> None:
    config = normalised("interval_scheduled", every="30s")
    assert first_fire("interval_scheduled", config, NOW) == NOW + timedelta(seconds=30)


def test_first_fire_interval_future_anchor_fires_at_anchor() -> None:
    config = normalised("interval_scheduled", every="1h", start_at="2026-01-03T00:00:00Z")
    assert first_fire("interval_scheduled", config, NOW) == datetime(2026, 1, 3, tzinfo=UTC)


def test_first_fire_interval_past_anchor_sets_phase() -> None:
    config = normalised("interval_scheduled", every="1h", start_at="2025-12-31T22:20:00Z")
    assert first_fire("interval_scheduled", config, NOW) == datetime(2026, 1, 1, 0, 20, tzinfo=UTC)


def test_first_fire_run_in_zero_fires_now() -> None:
    config = normalised("time_scheduled", run_at=..., run_in=0)
    assert first_fire("time_scheduled", config, NOW) == NOW


def test_first_fire_cron() -> None:
    config = normalised("cron_scheduled", cron="*/10 * * * * *")
    assert first_fire("cron_scheduled", config, NOW) == NOW + timedelta(seconds=10)


# --------------------------------------------------------------------------------------------
# webhook schema
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array"},
        {"$schema": "http://json-schema.org/draft-04/schema#"},
        {"$defs": {"id": {"type": "string"}}, "$ref": "#/$defs/id"},
    ],
)
def test_valid_webhook_schema_kept(schema: dict[str, Any]) -> None:
    assert normalised("webhook", schema=schema)["schema"] == schema


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "nope"}, "config.schema.type"),
        ({"properties": {"a": {"type": "nope"}}}, "config.schema.properties.a.type"),
        ({"required": "id"}, "config.schema.required"),
        ({"minimum": "zero"}, "config.schema.minimum"),
    ],
)
def test_invalid_json_schema_error_path(schema: dict[str, Any], field: str) -> None:
    errors = config_errors("webhook", schema=schema)
    assert list(errors) == [field]
    assert "not a valid JSON Schema" in errors[field]


@pytest.mark.parametrize("schema", ["string", [], 1, None, True])
def test_schema_must_be_an_object(schema: Any) -> None:
    assert list(config_errors("webhook", schema=schema)) == ["config.schema"]


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:  # http.server calls it by this name
        self.hits.append(self.path)
        body = b'{"type": "object"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that would serve any schema and records every fetch."""
    hits: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_schema_server_records_fetches(schema_server: tuple[str, list[str]]) -> None:
    # The fixture itself works, so `hits == []` below really means "never fetched".
    base, hits = schema_server
    with urllib.request.urlopen(f"{base}/probe.json", timeout=5) as response:
        assert response.status == 200
    assert hits == ["/probe.json"]


@pytest.mark.parametrize(
    "make_schema",
    [
        lambda base: {"$ref": f"{base}/remote.json"},
        lambda base: {"properties": {"a": {"$ref": f"{base}/remote.json#/x"}}},
        lambda base: {"$id": f"{base}/root.json", "$ref": "other.json"},
    ],
    ids=["top-level", "nested", "relative-to-id"],
)
def test_remote_ref_rejected_without_fetching(
    schema_server: tuple[str, list[str]], make_schema: Any
) -> None:
    base, hits = schema_server
    errors = config_errors("webhook", schema=make_schema(base))
    assert len(errors) == 1
    (field,) = errors
    assert field.startswith("config.schema")
    assert hits == []  # nothing was fetched


def test_file_ref_rejected() -> None:
    errors = config_errors("webhook", schema={"$ref": "file:///etc/passwd"})
    assert list(errors) == ["config.schema"]


@pytest.mark.parametrize(
    "dialect",
    [
        "http://json-schema.org/draft-03/schema#",
        "https://example.com/my-meta-schema",
        "https://json-schema.org/draft/2099-01/schema",
        "",
        5,
    ],
)
def test_unknown_schema_dialect_rejected(dialect: Any) -> None:
    errors = config_errors("webhook", schema={"$schema": dialect, "type": "object"})
    assert list(errors) == ["config.schema.$schema"]


def test_unknown_schema_dialect_not_fetched(schema_server: tuple[str, list[str]]) -> None:
    base, hits = schema_server
    errors = config_errors("webhook", schema={"$schema": f"{base}/meta", "type": "object"})
    assert list(errors) == ["config.schema.$schema"]
    assert hits == []


# --------------------------------------------------------------------------------------------
# Several errors at once
# --------------------------------------------------------------------------------------------


def test_bad_endpoint_and_bad_timeout_reported_together() -> None:
    errors = config_errors("webhook", endpoint="ftp://example.com", timeout="5m")
    assert set(errors) == {"config.endpoint", "config.timeout"}


def test_top_level_and_config_errors_reported_together() -> None:
    body = body_of("interval_scheduled", endpoint=..., endpont=ENDPOINT, every="0.5s")
    body["name"] = ""
    errors = create_errors(body)
    assert {"name", "config.endpont", "config.endpoint"} <= set(errors)


def test_many_semantic_errors_reported_together() -> None:
    errors = config_errors(
        "cron_scheduled",
        endpoint="http://127.0.0.1/",
        headers={"Host": "evil", "Bad Name": "x"},
        timeout="1ms",
        retry={"initial_delay": "1ms"},
        cron="99 * * * *",
        timezone="Nowhere/Land",
    )
    assert set(errors) == {
        "config.endpoint",
        "config.headers.Host",
        "config.headers.Bad Name",
        "config.timeout",
        "config.retry.initial_delay",
        "config.cron",
        "config.timezone",
    }


def test_several_schema_errors_reported_together() -> None:
    errors = config_errors("webhook", method="FETCH", retry={"max_attempts": 0}, extra=1)
    assert set(errors) == {"config.method", "config.retry.max_attempts", "config.extra"}


# --------------------------------------------------------------------------------------------
# validate_patch and normalise_config directly
# --------------------------------------------------------------------------------------------


def test_patch_name_only() -> None:
    assert validate_patch({"name": "renamed"}, "cron_scheduled", NOW, LIMITS) == TriggerPatch(
        "renamed", None, None
    )


@pytest.mark.parametrize("status", ["active", "paused"])
def test_patch_status(status: str) -> None:
    patch = validate_patch({"status": status}, "interval_scheduled", NOW, LIMITS)
    assert patch == TriggerPatch(None, status, None)


def test_patch_config_normalised_for_the_trigger_type() -> None:
    patch = validate_patch(
        {"config": {"endpoint": ENDPOINT, "every": "60s"}}, "interval_scheduled", NOW, LIMITS
    )
    assert patch.config == {**NORMALISED_MINIMAL["interval_scheduled"], "every": "1m"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ""),
        ({"nmae": "x"}, "nmae"),
        ({"status": "completed"}, "status"),
        ({"name": ""}, "name"),
        ({"type": "webhook"}, "type"),  # the type cannot change
        ({"config": []}, "config"),
        ({"config": {"endpoint": ENDPOINT, "cron": "* * * * *"}}, "config.cron"),  # not interval
        ({"config": {"endpoint": ENDPOINT, "every": "0.5s"}}, "config.every"),
        ({"config": {"every": "5s"}}, "config.endpoint"),
    ],
)
def test_bad_patch(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_patch(body, "interval_scheduled", NOW, LIMITS)
    assert field in [e.field for e in info.value.errors]


@pytest.mark.parametrize("kind", KINDS)
def test_normalise_config_is_idempotent(kind: str) -> None:
    once = normalise_config(kind, MINIMAL[kind], NOW, LIMITS)
    twice = normalise_config(kind, once, NOW, LIMITS)
    assert twice == once
