"""The audit trail's pure parts: entries, changed field names, actions, listing params."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventtrigger.config import DEFAULTS, SettingsError, load_settings
from eventtrigger.domain.audit import (
    ACTIONS,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    audit_entry,
    bulk_replay_fields,
    bulk_replay_target,
    changed_fields,
    created_fields,
    decode_cursor,
    encode_cursor,
    page_json,
    parse_query,
    patch_action,
)
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.ids import new_id
from eventtrigger.roles.api.principal import ANONYMOUS, Principal

AT = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
KEY = Principal(key_id="01JEXAMPLEKEY0000000000000", key_name="ci deploys", scopes=frozenset())


def test_an_entry_carries_the_principal_the_action_and_sorted_unique_field_names() -> None:
    entry = audit_entry(
        KEY, "trigger.update", "T1", "req-1", ["name", "config.cron", "name"], at=AT
    )
    assert (entry.key_id, entry.key_name) == (KEY.key_id, "ci deploys")
    assert (entry.action, entry.target_id, entry.request_id) == ("trigger.update", "T1", "req-1")
    assert entry.fields == ("config.cron", "name")
    assert entry.at == AT


def test_an_entry_time_is_stored_in_utc() -> None:
    paris = AT.astimezone(timezone(timedelta(hours=1)))
    assert audit_entry(ANONYMOUS, "trigger.delete", "T", None, [], at=paris).at.tzinfo == UTC


def test_an_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"trigger\.explode"):
        audit_entry(KEY, "trigger.explode", "T", None, [], at=AT)


def test_every_documented_action_is_known() -> None:
    assert set(ACTIONS) == {
        "trigger.create", "trigger.update", "trigger.delete", "trigger.pause",
        "trigger.resume", "trigger.rotate_secret", "trigger.rotate_webhook_url",
        "event.replay", "events.bulk_replay", "key.create", "key.revoke",
    }  # fmt: skip


def test_a_very_long_key_name_is_cut_to_the_column_width() -> None:
    long = Principal(key_id="k", key_name="n" * 400, scopes=frozenset())
    assert len(audit_entry(long, "key.create", "k", None, [], at=AT).key_name) == 255


def test_changed_fields_name_each_top_level_and_config_key_that_changed() -> None:
    before = {"name": "a", "status": "active", "config": {"cron": "* * * * *", "x": 1, "y": 2}}
    after = {"name": "b", "status": "active", "config": {"cron": "0 * * * *", "x": 1, "z": 3}}
    assert changed_fields(before, after) == ["name", "config.cron", "config.y", "config.z"]


def test_a_config_key_set_to_null_is_a_change() -> None:
    before = {"name": "a", "status": "active", "config": {"payload": {"k": 1}}}
    after = {"name": "a", "status": "active", "config": {"payload": None}}
    assert changed_fields(before, after) == ["config.payload"]


def test_nothing_changed_names_no_field() -> None:
    row = {"name": "a", "status": "paused", "config": {"cron": "* * * * *"}}
    assert changed_fields(row, dict(row)) == []


def test_field_names_never_carry_values() -> None:
    secret = "whsec_" + "S" * 44
    before = {"name": "a", "status": "active", "config": {"headers": {}}}
    after = {"name": secret, "status": "active", "config": {"headers": {"Authorization": secret}}}
    assert secret not in repr(changed_fields(before, after))


@pytest.mark.parametrize(
    ("before", "after", "changed", "action"),
    [
        ("active", "paused", ["status"], "trigger.pause"),
        ("paused", "active", ["status"], "trigger.resume"),
        ("active", "paused", ["name", "status"], "trigger.update"),
        ("completed", "active", ["config.run_at", "status"], "trigger.update"),
        ("active", "active", ["name"], "trigger.update"),
        ("paused", "paused", [], "trigger.update"),
    ],
)
def test_a_status_only_patch_is_a_pause_or_a_resume(
    before: str, after: str, changed: list[str], action: str
) -> None:
    assert patch_action(before, after, changed) == action


def test_created_fields_name_the_top_level_fields_and_each_config_key() -> None:
    assert created_fields({"endpoint": "https://x", "cron": "* * * * *"}) == [
        "name", "type", "status", "config.cron", "config.endpoint",
    ]  # fmt: skip


def test_a_bulk_replay_names_its_filters_and_targets_its_trigger() -> None:
    trigger = new_id(AT)
    body = {"trigger_id": trigger, "status": "failure", "since": None}
    assert bulk_replay_fields(body) == ["status", "trigger_id"]
    assert bulk_replay_target(body) == trigger
    assert bulk_replay_target({"trigger_id": "not-an-id"}) is None
    assert bulk_replay_target({"status": "failure"}) is None


def test_a_cursor_round_trips_and_is_opaque() -> None:
    row_id = new_id(AT)
    cursor = encode_cursor(AT, row_id)
    assert row_id not in cursor and "2026" not in cursor
    assert decode_cursor(cursor) == (AT, row_id)


@pytest.mark.parametrize("bad", ["", "abc", encode_cursor(AT, "nope"), "aWR8MDFBUlo"])
def test_anything_but_our_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(bad)


def test_the_query_defaults() -> None:
    query = parse_query({})
    assert (query.target_id, query.key_id, query.before_at, query.limit) == (
        None, None, None, DEFAULT_LIMIT,
    )  # fmt: skip


def test_before_may_be_a_time_or_a_cursor() -> None:
    as_time = parse_query({"before": "2026-12-07T13:00:00.123456+01:00"})
    assert (as_time.before_at, as_time.before_id) == (AT, "")
    row_id = new_id(AT)
    as_cursor = parse_query({"before": encode_cursor(AT, row_id)})
    assert (as_cursor.before_at, as_cursor.before_id) == (AT, row_id)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"before": "yesterday"}, "before"),
        ({"before": "2026-12-07T12:00:00"}, "before"),  # no offset
        ({"target_id": "é" * 3}, "target_id"),
        ({"target_id": "x" * 129}, "target_id"),
        ({"key_id": "a b"}, "key_id"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query(params)
    assert [e.field for e in caught.value.errors] == [field]


def test_every_bad_parameter_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query({"limit": "0", "before": "x", "key_id": "a b"})
    assert sorted(e.field for e in caught.value.errors) == ["before", "key_id", "limit"]


def test_the_limits_bounds_are_accepted() -> None:
    assert parse_query({"limit": "1"}).limit == 1
    assert parse_query({"limit": str(MAX_LIMIT)}).limit == MAX_LIMIT


def _row(n: int) -> dict[str, object]:
    at = AT - timedelta(seconds=n)
    return {
        "id": new_id(at), "at": at, "key_id": "k", "key_name": "n", "action": "trigger.delete",
        "target_id": "T", "request_id": None, "fields": [],
    }  # fmt: skip


def test_a_page_with_one_row_more_than_the_limit_points_after_its_last_row() -> None:
    rows = [_row(n) for n in range(3)]
    page = page_json(rows, 2)
    assert [i["id"] for i in page["items"]] == [rows[0]["id"], rows[1]["id"]]
    assert decode_cursor(page["next_cursor"]) == (rows[1]["at"], rows[1]["id"])
    assert page["items"][0]["at"] == "2026-12-07T12:00:00.123456Z"


def test_the_last_page_has_no_cursor() -> None:
    assert page_json([_row(0), _row(1)], 2)["next_cursor"] is None
    assert page_json([], 2) == {"items": [], "next_cursor": None}


def test_audit_retention_defaults_to_90_days_and_reads_its_variable() -> None:
    assert DEFAULTS["AUDIT_RETENTION"] == "90d"
    assert load_settings(environ={}, env_file=None).audit_retention == timedelta(days=90)
    given = load_settings(environ={"EVENTTRIGGER_AUDIT_RETENTION": "400d"}, env_file=None)
    assert given.audit_retention == timedelta(days=400)


@pytest.mark.parametrize("bad", ["soon", "0s", "10m"])
def test_a_bad_audit_retention_names_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"EVENTTRIGGER_AUDIT_RETENTION": bad}, env_file=None)
    assert caught.value.variable == "EVENTTRIGGER_AUDIT_RETENTION"
