"""Managed API keys (pure): the key format, what is stored of a key, which keys may act,
and what a create request may ask for.

A key is `etk_` + lowercase base32 (no padding) of 32 random bytes: 256 bits, so a
stored HMAC-SHA256 of it under a fixed label is as good as a password hash (nobody can
guess their way to a preimage) and can be looked up by equality. The database never
holds a key; only its first 8 characters (`prefix`, to tell keys apart in lists) and
the hash. Nothing here reads a clock: `now` is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.times import parse_rfc3339
from eventtrigger.roles.api.principal import SCOPES, Principal

KEY_PREFIX = "etk_"
PREFIX_LENGTH = 8
NAME_MAX = 200  # the column's width
# Fixed: changing it would turn every stored hash into one no key matches.
_HASH_LABEL = b"eventtrigger api key v1"
BOOTSTRAP_ID_PREFIX = "bootstrap_"


def new_key() -> str:
    """A fresh key: `etk_` + 52 lowercase base32 characters."""
    raw = base64.b32encode(secrets.token_bytes(32)).decode("ascii")
    return KEY_PREFIX + raw.rstrip("=").lower()


def prefix_of(key: str) -> str:
    """What lists show of a key: its first 8 characters (`etk_` and 4 more)."""
    return key[:PREFIX_LENGTH]


def key_hash(key: str) -> bytes:
    """What is stored of a key (32 bytes); looked up by equality, so the same key always
    gives the same hash."""
    return hmac.new(_HASH_LABEL, key.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def bootstrap_id(key: str) -> str:
    """A bootstrap key's stable id (the same in every process, on every start): it is
    derived from the key, so audit rows of one bootstrap key name one id."""
    return BOOTSTRAP_ID_PREFIX + key_hash(key).hex()[:8]


def bootstrap_principal(key: str, name: str) -> Principal:
    return Principal(
        key_id=bootstrap_id(key),
        key_name=name,
        scopes=frozenset({"admin"}),
        bootstrap=True,
    )


@dataclass(frozen=True)
class StoredKey:
    """A managed key as the database holds it (never the key itself)."""

    id: str
    name: str
    scopes: frozenset[str]
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(key_id=self.id, key_name=self.name, scopes=self.scopes)


def refusal(key: StoredKey | None, now: datetime) -> str | None:
    """Why `key` may not act at `now` (a reason label of the auth-failure metric), or
    None when it may: unknown keys are `invalid`; a revocation is permanent; a key
    expires at its `expires_at` exactly."""
    if key is None:
        return "invalid"
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and now >= key.expires_at:
        return "expired"
    return None


def can_administer_keys(scopes: frozenset[str]) -> bool:
    """Whether a key with `scopes` can make other keys (so bootstrap keys can go)."""
    return "admin" in scopes or "keys:admin" in scopes


@dataclass(frozen=True)
class NewKey:
    name: str
    scopes: tuple[str, ...]  # sorted, without repeats
    expires_at: datetime | None


_FIELDS = ("name", "scopes", "expires_at")


def validate_create(body: Any, now: datetime) -> NewKey:
    """A create request's body, or InvalidInput naming every wrong field."""
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("", "the body must be a JSON object")])
    errors = [FieldError(k, "unknown field") for k in body if k not in _FIELDS]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError("name", "required: a non-empty string"))
    elif len(name) > NAME_MAX:
        errors.append(FieldError("name", f"at most {NAME_MAX} characters"))
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        errors.append(FieldError("scopes", f"required: a non-empty list of {', '.join(SCOPES)}"))
        scopes = []
    else:
        for i, scope in enumerate(scopes):
            if scope not in SCOPES:
                errors.append(
                    FieldError(f"scopes[{i}]", f"unknown scope; use one of {', '.join(SCOPES)}")
                )
    expires_at = None
    raw = body.get("expires_at")
    if raw is not None:
        if not isinstance(raw, str):
            errors.append(FieldError("expires_at", "must be an RFC 3339 time with an offset"))
        else:
            try:
                expires_at = parse_rfc3339(raw)
            except ValueError:
                errors.append(FieldError("expires_at", "must be an RFC 3339 time with an offset"))
            else:
                if expires_at <= now:
                    errors.append(FieldError("expires_at", "must be in the future"))
    if errors:
        raise InvalidInput(errors)
    assert isinstance(name, str)
    return NewKey(name.strip(), tuple(sorted(set(scopes))), expires_at)


# When a key's use is written back: the first use soon (the flusher's next turn), later
# uses only when the stored time is this old, so a busy key costs one write a minute.
LAST_USED_REFRESH_SECONDS = 60.0


def usage_due(written: datetime | None, now: datetime) -> bool:
    """Whether a use at `now` of a key whose last_used_at is `written` must be written."""
    return written is None or (now - written).total_seconds() >= LAST_USED_REFRESH_SECONDS
