"""Replaying an event (pure): a new event that sends what the original sent.

The original's row keeps the request snapshot it was delivered with (url, method,
headers, timeout, retry), so a replay never reads the trigger's current config: an edit
made since does not change what a replay sends. Only the signature follows the trigger:
a replay is signed with the trigger's current signing keys when the trigger still
exists, since that is what its receiver verifies today; test runs and events of deleted
triggers keep the secret they were sent with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.domain.times import iso

SOURCE = "replay"
FILTERS = ("trigger_id", "status", "since", "until")
MAX_BULK, DEFAULT_BULK = 1000, 100
_SIGNING_FIELDS = ("signing_secret", "previous_signing_secret", "previous_secret_expires_at")


def replay_request(original: dict[str, Any], keys: SigningKeys | None) -> dict[str, Any]:
    """The original request snapshot, signed with `keys` when given."""
    if keys is None:
        return dict(original)
    request = {k: v for k, v in original.items() if k not in _SIGNING_FIELDS}
    request["signing_secret"] = keys.secret
    if keys.previous is not None and keys.previous_expires_at is not None:
        request["previous_signing_secret"] = keys.previous
        request["previous_secret_expires_at"] = iso(keys.previous_expires_at)
    return request


def replay_event(
    original: dict[str, Any],
    *,
    event_id: str,
    now: datetime,
    deadline: datetime,
    keys: SigningKeys | None,
) -> NewEvent:
    """The new event replaying `original` (an event row with its payload and request):
    fired now, its own id (so its own webhook-id) and attempts from 1."""
    return NewEvent(
        id=event_id,
        trigger_id=original["trigger_id"],
        trigger_type=original["trigger_type"],
        source=SOURCE,
        scheduled_at=now,
        fired_at=now,
        payload=original["payload"],
        request=replay_request(original["request"], keys),
        next_attempt_at=deadline,
        is_test_run=bool(original["is_test_run"]),
        note=original["note"],
        replay_of=original["id"],
    )


def replayable(original: dict[str, Any]) -> bool:
    """Whether the event was ever sendable: one recorded as failed because its schedule
    could not be computed has no request snapshot to send again."""
    request = original.get("request")
    return isinstance(request, dict) and "url" in request and "method" in request


def bulk_errors(body: dict[str, Any]) -> list[FieldError]:
    """What JSON Schema cannot say about a bulk replay: at least one filter."""
    if any(body.get(name) is not None for name in FILTERS):
        return []
    return [FieldError("trigger_id", "give at least one of: " + ", ".join(FILTERS))]
