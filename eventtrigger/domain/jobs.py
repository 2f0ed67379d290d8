"""Events and the Kafka job message (pure).

An event row holds everything needed to (re)build its job: the payload and a `request`
snapshot of the trigger's delivery settings taken when it fired, so edits after a firing
never change it and a re-publish sends exactly what the first publish sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from eventtrigger.domain.signing import SigningKeys
from eventtrigger.domain.triggers import iso, parse_iso

MESSAGE_VERSION = 1
# Kafka refuses messages over 1 MiB by default (broker and producer alike); a job must
# fit whole, so bodies are capped below that at the door rather than failing later.
MAX_JOB_BYTES = 1_000_000
_SAMPLE_TIME = datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
BODYLESS_METHODS = frozenset({"GET", "DELETE"})
TEST_RUN_NOTE = "test run"
_ROTATION_FIELDS = ("previous_signing_secret", "previous_secret_expires_at")


def request_snapshot(config: dict[str, Any], signing: str | SigningKeys) -> dict[str, Any]:
    """The delivery settings a firing keeps. During a secret rotation's grace the previous
    secret and its expiry go along, so the worker can add its signature to attempts made
    before that expiry (and only to those)."""
    keys = signing if isinstance(signing, SigningKeys) else SigningKeys(signing)
    snapshot = {
        "url": config["endpoint"],
        "method": config["method"],
        "headers": config["headers"],
        "timeout": config["timeout"],
        "retry": config["retry"],
        "signing_secret": keys.secret,
    }
    if keys.previous is not None and keys.previous_expires_at is not None:
        snapshot["previous_signing_secret"] = keys.previous
        snapshot["previous_secret_expires_at"] = iso(keys.previous_expires_at)
    return snapshot


@dataclass(frozen=True)
class NewEvent:
    id: str
    trigger_id: str | None
    trigger_type: str
    source: str  # api | scheduled | manual-test | replay
    scheduled_at: datetime
    fired_at: datetime
    payload: Any
    request: dict[str, Any]
    next_attempt_at: datetime  # republish deadline if nothing finished it by then
    occurrence_id: int | None = None
    is_test_run: bool = False
    note: str | None = None
    replay_of: str | None = None  # the event this one replays (source "replay")


def job_message(event: dict[str, Any]) -> dict[str, Any]:
    """The v1 job for an event row (a dict with event_logs column names)."""
    request = event["request"]
    method = request["method"]
    return {
        "v": MESSAGE_VERSION,
        "event_id": event["id"],
        "trigger_id": event["trigger_id"],
        "trigger_type": event["trigger_type"],
        "source": event["source"],
        "is_test_run": bool(event["is_test_run"]),
        "scheduled_at": iso(event["scheduled_at"]),
        "fired_at": iso(event["fired_at"]),
        "attempt": int(event["attempts"]) + 1,
        "request": {
            "url": request["url"],
            "method": method,
            "headers": request["headers"],
            "body": None if method in BODYLESS_METHODS else event["payload"],
        },
        "timeout": request["timeout"],
        "retry": request["retry"],
        "signing_secret": request["signing_secret"],
        # Only while a rotation's previous secret may still sign (absent otherwise).
        **{k: request[k] for k in _ROTATION_FIELDS if k in request},
    }


def dead_letter_message(event: dict[str, Any]) -> dict[str, Any]:
    """The dead-letter copy of a final failure, from its event row (with `attempts`,
    `last_error` and `last_status_code`): the last attempt's job and why it failed."""
    last = job_message({**event, "attempts": int(event["attempts"]) - 1})
    return {
        **last,
        "final_error": event["last_error"],
        "final_status_code": event["last_status_code"],
    }


def event_dict(event: NewEvent) -> dict[str, Any]:
    """A NewEvent in the shape `job_message` reads (no attempts made yet)."""
    return {
        "id": event.id,
        "trigger_id": event.trigger_id,
        "trigger_type": event.trigger_type,
        "source": event.source,
        "is_test_run": event.is_test_run,
        "scheduled_at": event.scheduled_at,
        "fired_at": event.fired_at,
        "payload": event.payload,
        "request": event.request,
        "attempts": 0,
    }


def job_bytes(payload: Any, request: dict[str, Any]) -> int:
    """Size of the job message a firing with this payload and request snapshot makes."""
    sample = {
        "id": "0" * 26, "trigger_id": "0" * 26, "trigger_type": "interval_scheduled",
        "source": "manual-test", "is_test_run": True, "scheduled_at": _SAMPLE_TIME,
        "fired_at": _SAMPLE_TIME, "payload": payload, "request": request, "attempts": 19,
    }  # fmt: skip
    return len(orjson.dumps(job_message(sample)))


def message_key(message: dict[str, Any]) -> bytes:
    """Trigger id (event id for pure test runs): one trigger's jobs share a partition."""
    return str(message["trigger_id"] or message["event_id"]).encode()


def scheduled_time(message: dict[str, Any]) -> datetime:
    return parse_iso(message["scheduled_at"])
