"""The worker refuses job messages it cannot use instead of crashing on them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventtrigger.roles.worker import _decode

GOOD: dict[str, Any] = {
    "v": 1,
    "event_id": "01M8EB65ENESE1SX21MRKX0J32",
    "trigger_id": None,
    "trigger_type": "webhook",
    "source": "api",
    "is_test_run": False,
    "scheduled_at": "2026-01-01T00:00:00Z",
    "fired_at": "2026-01-01T00:00:00Z",
    "attempt": 1,
    "request": {"url": "http://127.0.0.1/x", "method": "POST", "headers": {}, "body": None},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "signing_secret": "whsec_x",
}


def test_a_complete_job_decodes() -> None:
    assert _decode(orjson.dumps(GOOD)) == GOOD


@pytest.mark.parametrize(
    "broken",
    [
        {"timeout": "soon"},
        {"timeout": None},
        {"attempt": "1"},
        {"attempt": 0},
        {"event_id": 7},
        {"request": {"url": "http://x"}},
        {"retry": {"max_attempts": 5}},
        {"scheduled_at": "yesterday"},
        {"signing_secret": None},
    ],
)
def test_a_job_missing_or_mangling_a_field_is_refused(broken: dict[str, Any]) -> None:
    assert _decode(orjson.dumps({**GOOD, **broken})) is None


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", None])
def test_unreadable_bytes_are_refused(raw: bytes | None) -> None:
    assert _decode(raw) is None
