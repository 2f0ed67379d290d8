"""The audit trail's pure parts: what a row holds, which fields a change touched, and the
listing's parameters and cursors.

A row says who (the API key's id and name), did what (`ACTIONS`), to what (`target_id`),
in which request (`request_id`, as echoed in `X-Request-Id`), when, and which fields the
change touched: their NAMES only. Values never go in (a name, a cron or a URL may be
sensitive, and a signing secret always is), so the trail can be shown to any admin and
kept for months without becoming a second copy of the secrets.

Listing is newest first by (at, id). `before` is either an RFC 3339 time (rows strictly
older) or a `next_cursor` from a previous page (rows after it in that order); cursors
are opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.times import iso, parse_rfc3339
from eventtrigger.ids import looks_like_id

ACTIONS = (
    "trigger.create",
    "trigger.update",
    "trigger.delete",
    "trigger.pause",
    "trigger.resume",
    "trigger.rotate_secret",
    "trigger.rotate_webhook_url",
    "event.replay",
    "events.bulk_replay",
    "key.create",
    "key.revoke",
)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
KEY_NAME_MAX = 255  # the column's width; a longer key name is cut, never refused
_FILTER = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII: the id columns are ascii
_CURSOR_KIND = "audit"


class Actor(Protocol):
    """Who acted: `roles.api.principal.Principal` (read structurally, so this module does
    not depend on the HTTP layer)."""

    @property
    def key_id(self) -> str: ...

    @property
    def key_name(self) -> str: ...


@dataclass(frozen=True)
class AuditEntry:
    """One row to write; its id is made when it is written (`store.audit.record`)."""

    at: datetime
    key_id: str
    key_name: str
    action: str
    target_id: str | None
    request_id: str | None
    fields: tuple[str, ...]  # names, sorted, each once


def audit_entry(
    principal: Actor,
    action: str,
    target_id: str | None,
    request_id: str | None,
    fields: Iterable[str],
    *,
    at: datetime,
) -> AuditEntry:
    """The row for `principal` doing `action` to `target_id` at `at`, touching `fields`
    (names). An unknown action is a programming error (ValueError), not user input."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return AuditEntry(
        at=at.astimezone(UTC),
        key_id=principal.key_id,
        key_name=principal.key_name[:KEY_NAME_MAX],
        action=action,
        target_id=target_id,
        request_id=request_id,
        fields=tuple(sorted(set(fields))),
    )


_ABSENT = object()  # tells a key set to null from a key that is not there


def _config_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """`config.<key>` for every top-level config key added, removed or changed."""
    keys = sorted(set(before) | set(after))
    return [f"config.{k}" for k in keys if before.get(k, _ABSENT) != after.get(k, _ABSENT)]


def created_fields(config: Mapping[str, Any]) -> list[str]:
    """A new trigger's fields: the top-level ones and each config key it was saved with."""
    return ["name", "type", "status", *(f"config.{key}" for key in sorted(config))]


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields a PATCH changed, from the row before and after (`name`, `status`,
    `config`): `name`, `status` and `config.<key>` per top-level config key."""
    changed = [f for f in ("name", "status") if before[f] != after[f]]
    return changed + _config_keys(before["config"], after["config"])


def patch_action(before_status: str, after_status: str, changed: list[str]) -> str:
    """`trigger.pause` / `trigger.resume` for a PATCH that changed the status alone (what
    the console's and CLI's pause and resume send); `trigger.update` for anything else,
    a PATCH that changed nothing included (it was still a request to change)."""
    if changed == ["status"]:
        if after_status == "paused":
            return "trigger.pause"
        if before_status == "paused" and after_status == "active":
            return "trigger.resume"
    return "trigger.update"


def bulk_replay_target(body: Mapping[str, Any]) -> str | None:
    """A bulk replay's target: its trigger filter when it names one of our ids."""
    trigger_id = body.get("trigger_id")
    return trigger_id if isinstance(trigger_id, str) and looks_like_id(trigger_id) else None


def bulk_replay_fields(body: Mapping[str, Any]) -> list[str]:
    """The filters (and limit) a bulk replay was given, by name."""
    return sorted(k for k, v in body.items() if v is not None)


# ---- listing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    target_id: str | None
    key_id: str | None
    # Rows strictly before (before_at, before_id) in (at, id) order; before_id "" with a
    # time from the caller: strictly before that time.
    before_at: datetime | None
    before_id: str
    limit: int


def encode_cursor(at: datetime, row_id: str) -> str:
    """The position after a row, for `before`."""
    text = f"{_CURSOR_KIND}|{iso(at)}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, str]:
    """A cursor from `encode_cursor`; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor") from exc
    kind, _, rest = text.partition("|")
    at, _, row_id = rest.partition("|")
    if kind != _CURSOR_KIND or not looks_like_id(row_id):
        raise ValueError("not a cursor")
    return parse_rfc3339(at), row_id


def parse_before(raw: str) -> tuple[datetime, str]:
    """`before` as (at, id): an RFC 3339 time (id "", so rows strictly older) or a cursor."""
    try:
        return parse_rfc3339(raw), ""
    except ValueError:
        pass
    try:
        return decode_cursor(raw)
    except ValueError:
        raise InvalidInput(
            [FieldError("before", "expected an RFC 3339 time with an offset, or a next_cursor")]
        ) from None


def parse_query(params: Mapping[str, str]) -> AuditQuery:
    """The listing's query parameters; InvalidInput naming every bad one."""
    errors: list[FieldError] = []
    filters: dict[str, str | None] = {}
    for name in ("target_id", "key_id"):
        value = params.get(name) or None
        if value is not None and not _FILTER.fullmatch(value):
            errors.append(FieldError(name, "expected 1-128 visible ASCII characters"))
            value = None
        filters[name] = value
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT:
            limit = int(raw_limit)
        else:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
    before_at, before_id = None, ""
    raw_before = params.get("before")
    if raw_before:
        try:
            before_at, before_id = parse_before(raw_before)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors, "Invalid query parameter.")
    return AuditQuery(
        target_id=filters["target_id"],
        key_id=filters["key_id"],
        before_at=before_at,
        before_id=before_id,
        limit=limit,
    )


def item_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row (times in UTC, fields decoded) as the API shows it."""
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "key_id": row["key_id"],
        "key_name": row["key_name"],
        "action": row["action"],
        "target_id": row["target_id"],
        "request_id": row["request_id"],
        "fields": list(row["fields"]),
    }


def page_json(rows: Sequence[Mapping[str, Any]], limit: int) -> dict[str, Any]:
    """A page from up to `limit + 1` rows newest first: the extra one only says there is
    more, and the cursor points after the page's last row."""
    page = rows[:limit]
    more = len(rows) > limit and bool(page)
    return {
        "items": [item_json(r) for r in page],
        "next_cursor": encode_cursor(page[-1]["at"], page[-1]["id"]) if more else None,
    }
