"""The v1 Kafka job message built from an event row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventtrigger.domain.jobs import job_message, message_key, scheduled_time

AT = datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)


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
            "signing_secret": "whsec_abc",
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
        "signing_secret": "whsec_abc",
    }
    assert scheduled_time(message) == AT


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_carry_no_body(method: str) -> None:
    assert job_message(_event(method))["request"]["body"] is None


def test_attempt_number_follows_the_attempts_already_made() -> None:
    assert job_message(_event(attempts=2))["attempt"] == 3


def test_key_is_the_trigger_id_or_the_event_id_for_pure_test_runs() -> None:
    assert message_key(job_message(_event())) == b"T1"
    assert message_key(job_message(_event(trigger_id=None))) == b"E1"
