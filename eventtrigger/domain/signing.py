"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

The key is the base64 part of the `whsec_...` secret, as the Standard Webhooks libraries
expect, so receivers can verify with any of them.

Secret rotation: for a grace period after a rotation a delivery carries two signatures,
`v1,<new> v1,<old>`, space-separated in one header (the spec allows several), so
receivers can switch to the new secret whenever they like within that period. Jobs are
snapshots taken at fire time, but the choice of one or two signatures is made when each
attempt is signed (`signature_header`, with that attempt's `now`): a retry after the
grace carries the new signature only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventtrigger.domain.durations import DurationError, parse_duration
from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.times import parse_iso

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)
# 24 random bytes: 192 bits, well above the 128 the contract asks of a webhook token.
_TOKEN_BYTES = 24


def new_webhook_token() -> str:
    """The secret last segment of a webhook URL (base64url, 32 characters).

    Unrelated to the trigger id: ids are not secrets (logs, events and Kafka keys carry
    them), so knowing one must never let anyone fire the trigger."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, message_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True if any `v1,` signature in `header` (space-separated) matches."""
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, part) for part in header.split())


@dataclass(frozen=True)
class SigningKeys:
    """A trigger's current secret and, after a rotation, the previous one with its end."""

    secret: str
    previous: str | None = None
    previous_expires_at: datetime | None = None

    def previous_at(self, now: datetime) -> str | None:
        """The previous secret if it still signs at `now`, else None."""
        if self.previous is None or self.previous_expires_at is None:
            return None
        return self.previous if now < self.previous_expires_at else None


def signature_header(
    keys: SigningKeys, message_id: str, timestamp: int, body: bytes, now: datetime
) -> str:
    """The `webhook-signature` value: the new secret's signature first, then, during the
    grace period, the previous secret's."""
    header = sign(keys.secret, message_id, timestamp, body)
    previous = keys.previous_at(now)
    if previous is not None:
        header += " " + sign(previous, message_id, timestamp, body)
    return header


def job_keys(job: dict[str, Any]) -> SigningKeys:
    """The signing keys of a job as the worker holds it (the secrets come from its event row).

    The previous secret is optional and only ever adds a signature: if its fields are
    missing or malformed (an older message, a hand-made one) the job is signed with its
    current secret alone rather than refused."""
    previous = job.get("previous_signing_secret")
    expires = job.get("previous_secret_expires_at")
    if not isinstance(previous, str) or not isinstance(expires, str):
        return SigningKeys(job["signing_secret"])
    try:
        at = parse_iso(expires)
    except ValueError:
        return SigningKeys(job["signing_secret"])
    return SigningKeys(job["signing_secret"], previous, at)


def parse_grace(body: Any) -> timedelta:
    """The `grace` of a rotate-secret body (already checked to be an object): 0s-7d,
    24h when absent. InvalidInput names the field otherwise."""
    if not isinstance(body, dict) or "grace" not in body:
        return DEFAULT_GRACE
    try:
        grace = parse_duration(body["grace"])
    except (DurationError, TypeError) as exc:
        raise InvalidInput([FieldError("grace", str(exc))]) from None
    if grace > MAX_GRACE:
        raise InvalidInput([FieldError("grace", "at most 7d")])
    return grace
