"""Secret rotation (pure): which signatures an attempt carries, the grace setting, what a
job message carries, and webhook URL tokens. Receivers are checked with the
`standardwebhooks` reference library, not with our own verifier."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.jobs import (
    job_message,
    request_snapshot,
    snapshot_secrets,
    with_secrets,
)
from eventtrigger.domain.signing import (
    DEFAULT_GRACE,
    SigningKeys,
    job_keys,
    new_webhook_token,
    parse_grace,
    sign,
    signature_header,
)
from eventtrigger.ids import new_signing_secret

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD, NEW = new_signing_secret(), new_signing_secret()
BODY = b'{"order_id":42}'
CONFIG = {
    "endpoint": "https://example.com/x",
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
}


def _headers(keys: SigningKeys, at: datetime) -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        "webhook-id": "E1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, "E1", timestamp, BODY, at),
    }


def _accepts(secret: str, headers: dict[str, str]) -> bool:
    """What a receiver using the reference library concludes (timestamps are real now)."""
    try:
        Webhook(secret).verify(BODY, headers)
    except WebhookVerificationError:
        return False
    return True


def test_during_the_grace_the_header_holds_the_new_then_the_old_signature() -> None:
    keys = SigningKeys(NEW, OLD, NOW + timedelta(seconds=2))
    header = signature_header(keys, "E1", 1, BODY, NOW)
    assert header == f"{sign(NEW, 'E1', 1, BODY)} {sign(OLD, 'E1', 1, BODY)}"


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1), timedelta(days=1)])
def test_from_the_expiry_on_only_the_new_secret_signs(after: timedelta) -> None:
    expires = NOW + timedelta(seconds=2)
    keys = SigningKeys(NEW, OLD, expires)
    assert signature_header(keys, "E1", 1, BODY, expires + after) == sign(NEW, "E1", 1, BODY)


def test_a_standard_webhooks_receiver_accepts_either_secret_during_the_grace_only() -> None:
    real_now = datetime.now(UTC)  # the library checks the timestamp against its clock
    keys = SigningKeys(NEW, OLD, real_now + timedelta(hours=1))
    during = _headers(keys, real_now)
    assert _accepts(NEW, during) and _accepts(OLD, during)
    # An attempt signed at the expiry (same timestamp, so the library's clock check passes).
    after = {
        **during,
        "webhook-signature": signature_header(
            keys, "E1", int(during["webhook-timestamp"]), BODY, real_now + timedelta(hours=1)
        ),
    }
    assert _accepts(NEW, after) and not _accepts(OLD, after)


def test_jobs_carry_no_secret_and_the_worker_signs_with_the_snapshots() -> None:
    event: dict[str, Any] = {
        "id": "E1", "trigger_id": "T1", "trigger_type": "webhook", "source": "api",
        "is_test_run": False, "scheduled_at": NOW, "fired_at": NOW, "payload": {"a": 1},
        "attempts": 0,
    }  # fmt: skip
    plain_request = request_snapshot(CONFIG, NEW)
    plain = job_message({**event, "request": plain_request})
    assert not [k for k in plain if "secret" in k] and NEW not in str(plain)
    signed = with_secrets(plain, snapshot_secrets(plain_request))
    assert job_keys(signed) == SigningKeys(NEW)

    expires = NOW + timedelta(hours=24, microseconds=5)
    keys = SigningKeys(NEW, OLD, expires)
    request = request_snapshot(CONFIG, keys)
    rotating = job_message({**event, "request": request})
    assert not [k for k in rotating if "secret" in k]
    assert NEW not in str(rotating) and OLD not in str(rotating)
    assert request["previous_secret_expires_at"] == "2026-12-02T12:00:00.000005Z"
    # The worker reads back exactly what was snapshotted.
    assert job_keys(with_secrets(rotating, snapshot_secrets(request))) == keys


def test_an_old_message_carrying_secrets_is_signed_with_its_rows_secrets() -> None:
    old_message = {"event_id": "E1", "signing_secret": OLD, "previous_signing_secret": OLD}
    assert job_keys(with_secrets(old_message, {"signing_secret": NEW})) == SigningKeys(NEW)
    # A row without any (none that we wrote) leaves the message's own.
    assert with_secrets(old_message, {}) == old_message


@pytest.mark.parametrize(
    "extra",
    [
        {"previous_signing_secret": OLD},  # no expiry
        {"previous_signing_secret": OLD, "previous_secret_expires_at": "soon"},
        {"previous_signing_secret": 7, "previous_secret_expires_at": "2026-12-02T00:00:00Z"},
        {"previous_signing_secret": None, "previous_secret_expires_at": None},
    ],
)
def test_a_malformed_previous_secret_only_drops_the_second_signature(extra: dict[str, Any]) -> None:
    assert job_keys({"signing_secret": NEW, **extra}) == SigningKeys(NEW)


@pytest.mark.parametrize(
    ("body", "grace"),
    [
        ({}, DEFAULT_GRACE),
        ({"grace": "0s"}, timedelta(0)),
        ({"grace": 0}, timedelta(0)),
        ({"grace": "2s"}, timedelta(seconds=2)),
        ({"grace": "24h"}, timedelta(hours=24)),
        ({"grace": "7d"}, timedelta(days=7)),
        ({"grace": 604800}, timedelta(days=7)),
    ],
)
def test_grace_defaults_to_24h_and_takes_0s_to_7d(body: dict[str, Any], grace: timedelta) -> None:
    assert parse_grace(body) == grace


@pytest.mark.parametrize("value", ["7d1s", "8d", 604801, "-1s", -1, "soon", "", math.inf, True])
def test_grace_outside_0s_to_7d_names_the_field(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_grace({"grace": value})
    assert [e.field for e in caught.value.errors] == ["grace"]


def test_webhook_tokens_are_random_urlsafe_and_at_least_128_bits() -> None:
    tokens = {new_webhook_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
        assert len(base64.urlsafe_b64decode(token)) * 8 >= 128


# ---- an expired previous secret travels no further ---------------------------------------

EXPIRES = NOW + timedelta(hours=1)
ROTATING = SigningKeys(NEW, OLD, EXPIRES)


def _event(fired_at: datetime, keys: SigningKeys = ROTATING) -> dict[str, Any]:
    return {
        "id": "E1", "trigger_id": "T1", "trigger_type": "webhook", "source": "api",
        "is_test_run": False, "scheduled_at": fired_at, "fired_at": fired_at,
        "payload": {"a": 1}, "attempts": 0, "request": request_snapshot(CONFIG, keys),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("now", "kept"),
    [
        (None, True),  # callers that give no time keep what they were given
        (EXPIRES - timedelta(microseconds=1), True),
        (EXPIRES, False),
        (EXPIRES + timedelta(days=3), False),
    ],
)
def test_a_snapshot_taken_after_the_grace_leaves_the_previous_secret_out(
    now: datetime | None, kept: bool
) -> None:
    snapshot = request_snapshot(CONFIG, ROTATING, now)
    assert snapshot["signing_secret"] == NEW
    assert ("previous_signing_secret" in snapshot) is kept
    assert ("previous_secret_expires_at" in snapshot) is kept
    assert (OLD in str(snapshot)) is kept


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1), timedelta(days=2)])
def test_an_attempt_after_the_grace_is_signed_with_the_new_secret_only(after: timedelta) -> None:
    # The webhook path's snapshot (a cached trigger record, say) still holds the previous
    # secret and its past expiry: an attempt made after it carries one signature.
    event = _event(EXPIRES + after)
    assert event["request"]["previous_signing_secret"] == OLD
    job = with_secrets(job_message(event), snapshot_secrets(event["request"]))
    at = EXPIRES + after
    assert signature_header(job_keys(job), "E1", 1, BODY, at) == sign(NEW, "E1", 1, BODY)


def test_an_attempt_during_the_grace_carries_both_signatures_until_the_expiry() -> None:
    event = _event(EXPIRES - timedelta(minutes=5))
    keys = job_keys(with_secrets(job_message(event), snapshot_secrets(event["request"])))
    assert keys == ROTATING
    both = f"{sign(NEW, 'E1', 1, BODY)} {sign(OLD, 'E1', 1, BODY)}"
    assert signature_header(keys, "E1", 1, BODY, EXPIRES - timedelta(seconds=1)) == both
    # A retry (a lost job re-published) once the grace is over: the new secret only.
    assert signature_header(keys, "E1", 1, BODY, EXPIRES) == sign(NEW, "E1", 1, BODY)
