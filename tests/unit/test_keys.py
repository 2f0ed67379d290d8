"""Managed API keys, the pure parts: key format, hashing, create validation, refusals,
the last_used_at batch, and the route -> scope table the guard enforces."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.routing import Route

from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain import keys
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.api.app import routes
from eventtrigger.roles.api.auth import (
    ANY_KEY,
    ROUTE_SCOPES,
    Guard,
    Usage,
    bootstrap_keys,
    match_bootstrap,
    scope_for,
    shown_prefix,
)
from eventtrigger.roles.api.principal import SCOPES
from eventtrigger.store.db import Database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _stored(**changes: Any) -> keys.StoredKey:
    base: dict[str, Any] = {
        "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "name": "ci",
        "scopes": frozenset({"triggers:read"}),
        "prefix": "etk_abcd",
        "created_at": NOW - H,
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
    }
    base.update(changes)
    return keys.StoredKey(**base)


def _fields(body: Any) -> set[str]:
    with pytest.raises(InvalidInput) as refused:
        keys.validate_create(body, NOW)
    return {e.field for e in refused.value.errors}


# ---- the key format ---------------------------------------------------------------------


def test_new_keys_are_etk_and_52_lowercase_base32_characters_and_distinct() -> None:
    made = {keys.new_key() for _ in range(200)}
    assert len(made) == 200
    for key in made:
        # 32 bytes = 256 bits = 52 base32 characters (51.2, rounded up), no padding.
        assert re.fullmatch(r"etk_[a-z2-7]{52}", key), key


def test_the_prefix_is_the_first_8_characters() -> None:
    key = keys.new_key()
    assert keys.prefix_of(key) == key[:8] and key.startswith(keys.prefix_of(key))


def test_the_hash_is_stable_keyed_and_not_the_key() -> None:
    key = keys.new_key()
    assert keys.key_hash(key) == keys.key_hash(key)
    assert len(keys.key_hash(key)) == 32
    assert keys.key_hash(key) != keys.key_hash(keys.new_key())
    assert key.encode() not in keys.key_hash(key)
    # Keyed: not a plain SHA-256 of the key, so a table of SHA-256 hashes does not apply.
    import hashlib

    assert keys.key_hash(key) != hashlib.sha256(key.encode()).digest()


def test_a_bootstrap_key_has_a_stable_id_derived_from_it() -> None:
    one = keys.bootstrap_id("some-operator-key-123")
    assert one == keys.bootstrap_id("some-operator-key-123")
    assert re.fullmatch(r"bootstrap_[0-9a-f]{8}", one)
    assert one != keys.bootstrap_id("another-operator-key")


def test_an_operator_chosen_bootstrap_key_shows_only_3_characters() -> None:
    assert shown_prefix("short-key-12345678") == "sho..."
    generated = keys.new_key()
    assert shown_prefix(generated) == generated[:8]


def test_bootstrap_keys_are_admin_principals_matched_exactly(settings: Settings) -> None:
    from eventtrigger.bootstrap_key import with_key

    known = bootstrap_keys(with_key(settings, "etk_only-this-key-1234"))
    found = match_bootstrap("etk_only-this-key-1234", known)
    assert found is not None
    assert found.principal.bootstrap and found.principal.allows("keys:admin")
    for near in ("etk_only-this-key-123", "etk_only-this-key-12345", ""):
        assert match_bootstrap(near, known) is None


# ---- create validation ------------------------------------------------------------------


def test_a_valid_create_is_normalised() -> None:
    new = keys.validate_create(
        {
            "name": " deploy ",
            "scopes": ["triggers:write", "triggers:read", "triggers:write"],
            "expires_at": "2027-01-01T00:00:00+01:00",
        },
        NOW,
    )
    assert new.name == "deploy"
    assert new.scopes == ("triggers:read", "triggers:write")
    assert new.expires_at == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["admin"]}, "name"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"name": "   ", "scopes": ["admin"]}, "name"),
        ({"name": 7, "scopes": ["admin"]}, "name"),
        ({"name": "x" * 201, "scopes": ["admin"]}, "name"),
        ({"name": "n"}, "scopes"),
        ({"name": "n", "scopes": []}, "scopes"),
        ({"name": "n", "scopes": "admin"}, "scopes"),
        ({"name": "n", "scopes": ["triggers:read", "root"]}, "scopes[1]"),
        ({"name": "n", "scopes": [None]}, "scopes[0]"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "2027-01-01T00:00:00"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": 1893456000}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "2026-12-07T12:00:00Z"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "key": "etk_mine"}, "key"),
    ],
)
def test_bad_create_input_names_the_field(body: dict[str, Any], field: str) -> None:
    assert field in _fields(body)


def test_every_wrong_field_is_named_at_once() -> None:
    assert _fields({"name": "", "scopes": ["nope"], "expires_at": "x"}) == {
        "name",
        "scopes[0]",
        "expires_at",
    }


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert _fields(["name"]) == {""}


# ---- refusals ----------------------------------------------------------------------------


def test_an_unknown_key_is_invalid() -> None:
    assert keys.refusal(None, NOW) == "invalid"


def test_a_live_key_may_act() -> None:
    assert keys.refusal(_stored(), NOW) is None
    assert keys.refusal(_stored(expires_at=NOW + timedelta(microseconds=1)), NOW) is None


def test_a_key_expires_at_its_expiry_exactly() -> None:
    assert keys.refusal(_stored(expires_at=NOW), NOW) == "expired"
    assert keys.refusal(_stored(expires_at=NOW - H), NOW) == "expired"


def test_a_revoked_key_stays_refused_whatever_its_expiry() -> None:
    assert keys.refusal(_stored(revoked_at=NOW - H), NOW) == "revoked"
    assert keys.refusal(_stored(revoked_at=NOW - H, expires_at=NOW + H), NOW) == "revoked"


def test_key_admins_are_admin_or_keys_admin() -> None:
    assert keys.can_administer_keys(frozenset({"admin"}))
    assert keys.can_administer_keys(frozenset({"keys:admin"}))
    assert not keys.can_administer_keys(frozenset(set(SCOPES) - {"admin", "keys:admin"}))


# ---- last_used_at ------------------------------------------------------------------------


def test_a_first_use_is_written_on_the_next_flush() -> None:
    usage = Usage()
    usage.note(_stored(), NOW)
    assert usage.take() == {_stored().id: NOW}
    assert usage.take() == {}


def test_later_uses_are_written_at_most_once_a_minute() -> None:
    usage = Usage()
    key = _stored()
    usage.note(key, NOW)
    usage.done(usage.take())
    # The cached record still says "never used": the batch remembers what it wrote.
    usage.note(key, NOW + timedelta(seconds=59))
    assert usage.take() == {}
    usage.note(key, NOW + timedelta(seconds=60))
    assert usage.take() == {key.id: NOW + timedelta(seconds=60)}


def test_a_stored_recent_use_is_not_written_again() -> None:
    usage = Usage()
    usage.note(_stored(last_used_at=NOW - timedelta(seconds=30)), NOW)
    assert usage.take() == {}
    usage.note(_stored(last_used_at=NOW - timedelta(seconds=61)), NOW)
    assert usage.take() == {_stored().id: NOW}


def test_a_batch_that_failed_is_kept_for_the_next_flush() -> None:
    usage = Usage()
    usage.note(_stored(), NOW)
    batch = usage.take()
    usage.retry(batch)
    assert usage.take() == batch


# ---- the route table ---------------------------------------------------------------------


def _resources(settings: Settings) -> Resources:
    return Resources(
        settings=settings,
        clock=SystemClock(),
        db=Database(settings.database),
        health=Health((), {}),
        metrics=Metrics(),
        stats=StatsKeeper(Database(settings.database), Windows(H, 2 * H), Metrics()),
    )


def _served(settings: Settings) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in routes(_resources(settings), api=True)
        if isinstance(route, Route) and route.path.startswith("/api/v1/")
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_api_route_but_the_webhook_has_a_scope_and_the_table_no_stale_rows(
    settings: Settings,
) -> None:
    served = _served(settings) - {("POST", "/api/v1/webhook/{token}")}
    assert served == set(ROUTE_SCOPES)
    assert all(scope == ANY_KEY or scope in SCOPES for scope in ROUTE_SCOPES.values())


def test_the_scopes_follow_the_rule() -> None:
    """Reads need *:read, mutations *:write, replay events:write, keys keys:admin."""
    for (method, path), scope in ROUTE_SCOPES.items():
        if path == "/api/v1/keys/self":
            assert scope == ANY_KEY
        elif path.startswith("/api/v1/keys"):
            assert scope == "keys:admin"
        elif path.startswith("/api/v1/audit"):
            assert scope == "admin"
        elif path.endswith("/replay"):
            assert scope == "events:write"
        elif method == "GET":
            assert scope.endswith(":read"), (method, path)
        else:
            assert scope.endswith(":write"), (method, path)


def test_head_is_checked_as_get() -> None:
    assert scope_for("HEAD", "/api/v1/triggers") == "triggers:read"
    assert scope_for("GET", "/api/v1/nowhere") is None


def test_a_route_without_a_scope_stops_the_app_from_being_built(settings: Settings) -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError("never called")

    guard = Guard(_resources(settings))
    with pytest.raises(RuntimeError, match="/api/v1/unlisted"):
        guard.guard(Route("/api/v1/unlisted", endpoint, methods=["GET"]))
    # Routes outside the API, and the webhook, are left as they are.
    open_route = Route("/dashboard", endpoint, methods=["GET"])
    assert guard.guard(open_route) is open_route
    webhook = Route("/api/v1/webhook/{token}", endpoint, methods=["POST"])
    assert guard.guard(webhook) is webhook


# ---- settings ------------------------------------------------------------------------------


def _load(**env: str) -> Settings:
    from eventtrigger.config import load_settings

    return load_settings(environ={f"EVENTTRIGGER_{k}": v for k, v in env.items()}, env_file=None)


def test_bootstrap_keys_are_enabled_unless_disabled() -> None:
    assert _load().bootstrap_keys_enabled
    assert not _load(BOOTSTRAP_KEYS="disabled").bootstrap_keys_enabled
    assert _load(BOOTSTRAP_KEYS="Enabled").bootstrap_keys_enabled


@pytest.mark.parametrize(
    ("name", "value"), [("BOOTSTRAP_KEYS", "off"), ("AUTH_FAILURE_BURST", "0")]
)
def test_bad_key_settings_name_the_variable(name: str, value: str) -> None:
    from eventtrigger.config import SettingsError

    with pytest.raises(SettingsError) as refused:
        _load(**{name: value})
    assert refused.value.variable == f"EVENTTRIGGER_{name}"


def test_no_bootstrap_key_file_is_made_when_bootstrap_keys_are_disabled(tmp_path: Any) -> None:
    from eventtrigger.bootstrap_key import key_file, show_refusal

    path = str(tmp_path / "key")
    assert key_file(_load(BOOTSTRAP_KEY_FILE=path)) is not None
    off = _load(BOOTSTRAP_KEY_FILE=path, BOOTSTRAP_KEYS="disabled")
    assert key_file(off) is None
    assert "EVENTTRIGGER_BOOTSTRAP_KEYS=disabled" in (show_refusal(off) or "")
