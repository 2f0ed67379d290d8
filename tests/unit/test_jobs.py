"""The v1 job contract: the message built from an event row, decoded back (each malformed
shape with its reason), the bodies it sends, its dead-letter copies (never a secret) and
the endpoint key jobs are grouped by."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventtrigger.domain.jobs import (
    MAX_JOB_BYTES,
    MAX_READ_BYTES,
    REJECT_REASONS,
    BadJob,
    dead_letter,
    dead_letter_message,
    decode,
    decode_job,
    endpoint_key,
    from_event,
    job_bytes,
    job_message,
    message_key,
    rejected_message,
    request_body,
    scheduled_time,
)

AT = datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _event(
    method: str = "POST", trigger_id: str | None = "T1", attempts: int = 0
) -> dict[str, Any]:
    return {
        "id": "E1",
        "trigger_id": trigger_id,
        "trigger_type": "cron_scheduled",
        "source": "scheduled",
        "is_test_run": 0,
        "scheduled_at": AT,
        "fired_at": AT,
        "payload": {"a": 1},
        "attempts": attempts,
        "request": {
            "url": "https://example.com/x",
            "method": method,
            "headers": {"X-A": "b"},
            "timeout": "10s",
            "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
            "signing_secret": SECRET,
        },
    }


def test_message_carries_everything_needed_to_deliver() -> None:
    message = job_message(_event())
    assert message == {
        "v": 1,
        "event_id": "E1",
        "trigger_id": "T1",
        "trigger_type": "cron_scheduled",
        "source": "scheduled",
        "is_test_run": False,
        "scheduled_at": "2026-01-01T12:00:00.250000Z",
        "fired_at": "2026-01-01T12:00:00.250000Z",
        "attempt": 1,
        "request": {
            "url": "https://example.com/x",
            "method": "POST",
            "headers": {"X-A": "b"},
            "body": {"a": 1},
        },
        "timeout": "10s",
        "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    }
    assert scheduled_time(message) == AT


def test_no_job_carries_a_secret_whatever_its_snapshot_holds() -> None:
    event = _event()
    event["request"] = {**event["request"], **ROTATING}
    for attempts in (0, 3):
        message = job_message({**event, "attempts": attempts})
        assert not [k for k in message if "secret" in k]
        assert "whsec_" not in orjson.dumps(message).decode()


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_carry_no_body(method: str) -> None:
    assert job_message(_event(method))["request"]["body"] is None


def test_attempt_number_follows_the_attempts_already_made() -> None:
    assert job_message(_event(attempts=2))["attempt"] == 3


def test_key_is_the_trigger_id_or_the_event_id_for_pure_test_runs() -> None:
    assert message_key(job_message(_event())) == b"T1"
    assert message_key(job_message(_event(trigger_id=None))) == b"E1"


def test_a_rejected_message_is_keyed_by_where_it_was() -> None:
    copy = rejected_message(b"{", "not_json", "not JSON", "jobs", 3, 41)
    assert message_key(copy) == b"jobs:3:41"


# ---- decode_job: every malformed shape has its reason ---------------------------------

GOOD: dict[str, Any] = {
    "v": 1,
    "event_id": "01M8EB65ENESE1SX21MRKX0J32",
    "trigger_id": "01M8EB65ENESE1SX21MRKX0J33",
    "trigger_type": "webhook",
    "source": "api",
    "is_test_run": False,
    "scheduled_at": "2026-01-01T00:00:00Z",
    "fired_at": "2026-01-01T00:00:00.250000Z",
    "attempt": 1,
    "request": {"url": "http://127.0.0.1/x", "method": "POST", "headers": {}, "body": None},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
}
# A message published before jobs stopped carrying secrets (still in flight at upgrade).
OLD_SHAPE: dict[str, Any] = {**GOOD, "signing_secret": SECRET}


def _without(path: str) -> dict[str, Any]:
    job: dict[str, Any] = orjson.loads(orjson.dumps(GOOD))
    *parents, last = path.split(".")
    target = job
    for name in parents:
        target = target[name]
    del target[last]
    return job


def _with(path: str, value: Any) -> dict[str, Any]:
    job: dict[str, Any] = orjson.loads(orjson.dumps(GOOD))
    *parents, last = path.split(".")
    target = job
    for name in parents:
        target = target[name]
    target[last] = value
    return job


def test_a_complete_job_decodes_as_it_was_built() -> None:
    assert decode_job(orjson.dumps(GOOD)) == GOOD
    built = job_message(_event())
    assert decode_job(orjson.dumps(built)) == built
    assert decode is decode_job and from_event is job_message


@pytest.mark.parametrize(
    "job",
    [
        _with("trigger_id", None),  # a pure test run
        _with("attempt", 20),
        _with("request.method", "GET"),
        _with("request.url", "https://[::1]:8443/x?q=1"),
        _with("request.url", "http://example.com:65535/"),
        _with("request.headers", {"X-A": "b"}),
        _with("request.body", {"a": [1, None]}),
        _with("timeout", 2.5),
        _with("scheduled_at", "2026-01-01T01:00:00+01:00"),
        OLD_SHAPE,
        {**OLD_SHAPE, "signing_secret": None},  # null means absent
        {
            **OLD_SHAPE,
            "previous_signing_secret": SECRET,
            "previous_secret_expires_at": "2026-01-02T00:00:00Z",
        },
        {**OLD_SHAPE, "previous_signing_secret": None, "previous_secret_expires_at": None},
        _without("trigger_type"),  # informative only
    ],
)
def test_valid_variations_decode(job: dict[str, Any]) -> None:
    assert decode_job(orjson.dumps(job)) == job


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "not_json"),
        (b"", "not_json"),
        (b"not json", "not_json"),
        (b'{"v": 1', "not_json"),
        (b"[]", "not_json"),
        (b"null", "not_json"),
        (b'"a job"', "not_json"),
        (b"\xff\xfe", "not_json"),
        (b'{"v": 1, "pad": "' + b"x" * MAX_READ_BYTES + b'"}', "too_large"),
    ],
)
def test_bytes_that_are_no_job_object_are_refused(raw: bytes | None, reason: str) -> None:
    with pytest.raises(BadJob) as caught:
        decode_job(raw)
    assert caught.value.reason == reason


def test_a_job_just_over_the_cap_is_still_read() -> None:
    # The door caps jobs at MAX_JOB_BYTES; the reader leaves headroom above that.
    job = _with("request.body", "x" * MAX_JOB_BYTES)
    assert MAX_JOB_BYTES < len(orjson.dumps(job)) <= MAX_READ_BYTES
    assert decode_job(orjson.dumps(job))["request"]["body"] == "x" * MAX_JOB_BYTES


MALFORMED = [
    # (the job, reason, the field named in the detail)
    (_without("v"), "missing_field", "v"),
    (_with("v", 2), "bad_version", "v"),
    (_with("v", "1"), "bad_version", "v"),
    (_with("v", True), "bad_version", "v"),
    (_without("event_id"), "missing_field", "event_id"),
    (_with("event_id", 7), "bad_field", "event_id"),
    (_with("event_id", ""), "bad_field", "event_id"),
    (_without("trigger_id"), "missing_field", "trigger_id"),
    (_with("trigger_id", 7), "bad_field", "trigger_id"),
    (_with("trigger_type", None), "bad_field", "trigger_type"),
    (_with("is_test_run", "no"), "bad_field", "is_test_run"),
    (_without("attempt"), "missing_field", "attempt"),
    (_with("attempt", "1"), "bad_field", "attempt"),
    (_with("attempt", 0), "bad_field", "attempt"),
    (_with("attempt", 1.5), "bad_field", "attempt"),
    (_with("attempt", True), "bad_field", "attempt"),
    (_without("source"), "missing_field", "source"),
    (_with("source", None), "bad_field", "source"),
    (_without("fired_at"), "missing_field", "fired_at"),
    (_with("fired_at", "yesterday"), "bad_field", "fired_at"),
    (_with("fired_at", "2026-01-01"), "bad_field", "fired_at"),  # a date, no time
    (_with("scheduled_at", "2026-01-01T00:00:00"), "bad_field", "scheduled_at"),  # no offset
    (_with("scheduled_at", "2026-13-01T00:00:00Z"), "bad_field", "scheduled_at"),
    (_with("scheduled_at", 1767225600), "bad_field", "scheduled_at"),
    (_without("request"), "missing_field", "request"),
    (_with("request", "http://x"), "bad_field", "request"),
    (_without("request.url"), "missing_field", "request.url"),
    (_with("request.url", 7), "bad_url", "request.url"),
    (_with("request.url", "http://[::1/x"), "bad_url", "request.url"),
    (_with("request.url", "http://h:99999/"), "bad_url", "request.url"),
    (_with("request.url", "http://h:port/"), "bad_url", "request.url"),
    (_with("request.url", "ftp://h/x"), "bad_url", "request.url"),
    (_with("request.url", "/relative/path"), "bad_url", "request.url"),
    (_with("request.url", "http:///no-host"), "bad_url", "request.url"),
    (_without("request.method"), "missing_field", "request.method"),
    (_with("request.method", "post"), "bad_field", "request.method"),
    (_with("request.method", "TRACE"), "bad_field", "request.method"),
    (_with("request.method", None), "bad_field", "request.method"),
    (_without("request.headers"), "missing_field", "request.headers"),
    (_with("request.headers", ["X-A: b"]), "bad_field", "request.headers"),
    (_with("request.headers", {"X-A": 1}), "bad_field", "request.headers"),
    (_with("request.headers", {"X-A": None}), "bad_field", "request.headers"),
    (_without("request.body"), "missing_field", "request.body"),
    (_without("timeout"), "missing_field", "timeout"),
    (_with("timeout", "soon"), "bad_field", "timeout"),
    (_with("timeout", None), "bad_field", "timeout"),
    (_with("timeout", "0s"), "bad_field", "timeout"),
    (_with("timeout", -1), "bad_field", "timeout"),
    (_without("retry"), "missing_field", "retry"),
    (_with("retry", 5), "bad_field", "retry"),
    (_without("retry.max_attempts"), "missing_field", "retry.max_attempts"),
    (_with("retry.max_attempts", "5"), "bad_field", "retry.max_attempts"),
    (_with("retry.max_attempts", 0), "bad_field", "retry.max_attempts"),
    (_without("retry.initial_delay"), "missing_field", "retry.initial_delay"),
    (_with("retry.initial_delay", "later"), "bad_field", "retry.initial_delay"),
    (_with("retry.max_delay", [1]), "bad_field", "retry.max_delay"),
    (_with("signing_secret", ""), "bad_field", "signing_secret"),
    (_with("signing_secret", 7), "bad_field", "signing_secret"),
    ({**GOOD, "previous_signing_secret": SECRET}, "missing_field", "previous_secret_expires_at"),
    (
        {
            **GOOD,
            "previous_signing_secret": 7,
            "previous_secret_expires_at": "2026-01-02T00:00:00Z",
        },
        "bad_field",
        "previous_signing_secret",
    ),
    (
        {**GOOD, "previous_signing_secret": SECRET, "previous_secret_expires_at": "soon"},
        "bad_field",
        "previous_secret_expires_at",
    ),
    (
        {**GOOD, "previous_secret_expires_at": "2026-01-02T00:00:00Z"},
        "missing_field",
        "previous_signing_secret",
    ),
]


@pytest.mark.parametrize(
    ("job", "reason", "field"),
    MALFORMED,
    ids=[f"{r}-{f}-{i}" for i, (_, r, f) in enumerate(MALFORMED)],
)
def test_a_job_missing_or_mangling_a_field_is_refused_naming_it(
    job: dict[str, Any], reason: str, field: str
) -> None:
    with pytest.raises(BadJob) as caught:
        decode_job(orjson.dumps(job))
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(f"{field}:")
    assert isinstance(caught.value, ValueError)


def test_every_reason_is_a_known_metric_label() -> None:
    assert {r for _, r, _ in MALFORMED} | {"not_json", "too_large"} == set(REJECT_REASONS)


# ---- bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "payload", "sent"),
    [
        ("POST", {"a": 1}, b'{"a":1}'),
        ("POST", None, b"null"),
        ("PUT", None, b"null"),
        ("PATCH", None, b"null"),
        ("POST", [], b"[]"),
        ("POST", "", b'""'),
        ("GET", {"a": 1}, None),
        ("DELETE", None, None),
    ],
)
def test_post_put_patch_send_the_payload_as_json_even_null(
    method: str, payload: Any, sent: bytes | None
) -> None:
    job = job_message({**_event(method), "payload": payload})
    assert request_body(job["request"]) == sent


def test_an_old_message_with_a_null_body_sends_null() -> None:
    # Published before the rule: body None for a POST meant a null payload then too.
    assert request_body({"method": "POST", "headers": {}, "body": None, "url": "x"}) == b"null"


# ---- dead-letter copies ------------------------------------------------------------------

ROTATING = {
    "previous_signing_secret": SECRET,
    "previous_secret_expires_at": "2026-01-01T13:00:00Z",
}


def test_the_dead_letter_copy_is_the_job_with_why_and_no_secret() -> None:
    # The job as the worker holds it (its row's secrets added in memory to sign with).
    job = {**job_message(_event()), "signing_secret": SECRET, **ROTATING}
    copy = dead_letter(job, "HTTP 500: boom", 500)
    assert copy == {
        **{k: v for k, v in job.items() if k not in ("signing_secret", *ROTATING)},
        "final_error": "HTTP 500: boom",
        "final_status_code": 500,
    }
    assert "whsec_" not in orjson.dumps(copy).decode()
    assert job["signing_secret"] == SECRET  # the job itself is left alone


def test_the_re_publishers_dead_letter_copy_carries_no_secret_either() -> None:
    event = _event(attempts=3)
    event["request"] = {**event["request"], **ROTATING}
    copy = dead_letter_message({**event, "last_error": "timed out", "last_status_code": None})
    assert copy["attempt"] == 3
    assert (copy["final_error"], copy["final_status_code"]) == ("timed out", None)
    assert not [k for k in copy if "secret" in k]
    assert "whsec_" not in orjson.dumps(copy).decode()


@pytest.mark.parametrize(
    "value",
    [
        orjson.dumps({**GOOD, "v": 9, **ROTATING}),
        b"garbage " + orjson.dumps(GOOD),  # not JSON, a secret inside
        orjson.dumps({"pad": "x" * 1000, "signing_secret": SECRET}),  # the secret cut off
        b'{"signing_secret": "abcdef',  # truncated, no whsec_ prefix
        orjson.dumps([{"my_secret": "hunter2"}]),
    ],
)
def test_a_rejected_message_keeps_a_head_without_secrets(value: bytes) -> None:
    body = rejected_message(value, "bad_version", "v: 9 is not 1", "jobs", 3, 42)
    assert {k: body[k] for k in body if k != "value_head"} == {
        "v": 1, "rejected": True, "reason": "bad_version", "detail": "v: 9 is not 1",
        "topic": "jobs", "partition": 3, "offset": 42, "value_bytes": len(value),
    }  # fmt: skip
    head = body["value_head"]
    assert len(head.encode()) <= 1024 + 64
    for secret in (SECRET, SECRET.removeprefix("whsec_")[:8], "abcdef", "hunter2"):
        assert secret not in head


def test_a_rejected_message_keeps_at_most_1_kib_of_the_value_as_text() -> None:
    value = b"\xff" + b"y" * 5000
    body = rejected_message(value, "not_json", "not JSON", "jobs", 0, 1)
    assert body["value_head"] == "\ufffd" + "y" * 1023
    assert body["value_bytes"] == 5001
    assert rejected_message(None, "not_json", "empty", "jobs", 0, 2)["value_head"] == ""


# ---- endpoint keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Example.com/x", "https://example.com:443"),
        ("https://example.com:443/y", "https://example.com:443"),
        ("HTTPS://EXAMPLE.COM/", "https://example.com:443"),
        ("http://example.com/", "http://example.com:80"),
        ("http://example.com:8080/a?b#c", "http://example.com:8080"),
        ("http://user:pw@example.com/", "http://example.com:80"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("http://[::1]/", "http://[::1]:80"),
        ("http://[0:0:0:0:0:0:0:1]:81/", "http://[::1]:81"),
        ("https://[2001:DB8::1]/", "https://[2001:db8::1]:443"),
        ("https://Bücher.example/", "https://xn--bcher-kva.example:443"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example:443"),
    ],
)
def test_the_endpoint_key_is_scheme_host_and_explicit_port(url: str, key: str) -> None:
    assert endpoint_key(url) == key


def test_an_endpoint_key_survives_a_host_idna_refuses() -> None:
    # Delivery records such a URL as a permanent failure; grouping must not crash first.
    assert endpoint_key("http://a..b/").startswith("http://a..b")


def test_the_size_at_the_door_is_the_jobs_which_no_secret_adds_to() -> None:
    request = _event()["request"]
    rotating = {
        **request,
        "previous_signing_secret": SECRET,
        "previous_secret_expires_at": "2000-01-01T00:00:00.000001Z",  # long past
    }
    assert job_bytes({"a": 1}, rotating) == job_bytes({"a": 1}, request)
    sample = {**_event(attempts=19), "id": "0" * 26, "trigger_id": "0" * 26}
    assert job_bytes({"a": 1}, request) >= len(orjson.dumps(job_message(sample)))
