"""plan_patch: what a PATCH does to a trigger's row and its pending occurrences (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.triggers import (
    Limits,
    PatchPlan,
    TriggerPatch,
    normalise_config,
    plan_patch,
    validate_patch,
)

CREATED = datetime(2025, 6, 1, tzinfo=UTC)  # when the stored triggers were saved
NOW = datetime(2026, 1, 1, 10, 7, 30, tzinfo=UTC)  # when the PATCH arrives
LIMITS = Limits()
ENDPOINT = "https://example.com/hook"
SCHEDULED = ("time_scheduled", "cron_scheduled", "interval_scheduled")


def stored(kind: str, **config: Any) -> dict[str, Any]:
    """A config as it was normalised and saved at CREATED."""
    return normalise_config(kind, {"endpoint": ENDPOINT, **config}, CREATED, LIMITS)


STORED: dict[str, dict[str, Any]] = {
    "webhook": stored("webhook", schema={"type": "object"}),
    "time_scheduled": stored("time_scheduled", run_at="2026-02-01T00:00:00Z"),
    "cron_scheduled": stored("cron_scheduled", cron="*/15 * * * *"),
    "interval_scheduled": stored("interval_scheduled", every="1h", start_at="2020-01-01T00:00:07Z"),
}


def patch_of(kind: str, body: dict[str, Any], now: datetime = NOW) -> TriggerPatch:
    return validate_patch(body, kind, now, LIMITS)


def plan(
    kind: str,
    body: dict[str, Any],
    *,
    status: str = "active",
    config: dict[str, Any] | None = None,
    version: int = 3,
    now: datetime = NOW,
) -> PatchPlan:
    return plan_patch(
        kind=kind,
        name="old name",
        status=status,
        config=STORED[kind] if config is None else config,
        version=version,
        patch=patch_of(kind, body, now),
        now=now,
    )


def plan_error_fields(kind: str, body: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        plan(kind, body, **kwargs)
    return [e.field for e in info.value.errors]


# --------------------------------------------------------------------------------------------
# name only
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*SCHEDULED, "webhook"])
@pytest.mark.parametrize("status", ["active", "paused"])
def test_name_only_patch_keeps_version_and_schedule(kind: str, status: str) -> None:
    result = plan(kind, {"name": "new name"}, status=status)
    assert result == PatchPlan(
        name="new name",
        status=status,
        config=STORED[kind],
        version=3,
        reschedule=False,
        next_fire_at=None,
    )


@pytest.mark.parametrize("kind", SCHEDULED)
def test_same_status_again_changes_nothing(kind: str) -> None:
    result = plan(kind, {"status": "active"})
    assert result.status == "active"
    assert result.reschedule is False
    assert result.version == 3
    assert result.name == "old name"


# --------------------------------------------------------------------------------------------
# pause and resume
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SCHEDULED)
def test_pause_cancels_pending_occurrences(kind: str) -> None:
    result = plan(kind, {"status": "paused"})
    assert result.status == "paused"
    assert result.reschedule is True
    assert result.next_fire_at is None
    assert result.version == 3  # not a config change
    assert result.config == STORED[kind]


def test_resume_interval_continues_from_next_future_anchor_without_burst() -> None:
    # anchored 2020-01-01T00:00:07Z, every 1h; thousands of runs were "missed" while paused
    result = plan("interval_scheduled", {"status": "active"}, status="paused")
    assert result.status == "active"
    assert result.reschedule is True
    assert result.version == 3
    assert result.next_fire_at == datetime(2026, 1, 1, 11, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 1, 1, 10, 0, 6, tzinfo=UTC), datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC)),
        (datetime(2026, 1, 1, 10, 0, 8, tzinfo=UTC), datetime(2026, 1, 1, 11, 0, 7, tzinfo=UTC)),
        # exactly on an occurrence: that one is not in the future any more
        (datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC), datetime(2026, 1, 1, 11, 0, 7, tzinfo=UTC)),
        (datetime(2030, 7, 4, 23, 59, 59, tzinfo=UTC), datetime(2030, 7, 5, 0, 0, 7, tzinfo=UTC)),
    ],
)
def test_resume_interval_is_relative_to_now(now: datetime, expected: datetime) -> None:
    result = plan("interval_scheduled", {"status": "active"}, status="paused", now=now)
    assert result.next_fire_at == expected
    anchor = datetime(2020, 1, 1, 0, 0, 7, tzinfo=UTC)
    assert result.next_fire_at is not None
    # on the anchored grid, in the future, and the first such point (no burst, no skip)
    assert (result.next_fire_at - anchor) % timedelta(hours=1) == timedelta(0)
    assert now < result.next_fire_at <= now + timedelta(hours=1)


def test_resume_cron_computes_next_future_occurrence() -> None:
    result = plan("cron_scheduled", {"status": "active"}, status="paused")
    assert result.status == "active"
    assert result.reschedule is True
    assert result.next_fire_at == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)


def test_resume_cron_in_a_time_zone() -> None:
    config = stored("cron_scheduled", cron="0 9 * * *", timezone="Europe/Berlin")
    # NOW is 11:07 in Berlin, so today's 09:00 is gone; tomorrow 09:00 CET = 08:00Z
    result = plan("cron_scheduled", {"status": "active"}, status="paused", config=config)
    assert result.next_fire_at == datetime(2026, 1, 2, 8, 0, tzinfo=UTC)


def test_resume_one_time_trigger_with_future_run_at() -> None:
    result = plan("time_scheduled", {"status": "active"}, status="paused")
    assert result.status == "active"
    assert result.reschedule is True
    assert result.next_fire_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_resume_one_time_trigger_whose_run_at_passed_is_rejected() -> None:
    config = stored("time_scheduled", run_at="2025-12-31T00:00:00Z")
    fields = plan_error_fields(
        "time_scheduled", {"status": "active"}, status="paused", config=config
    )
    assert fields == ["status"]


def test_resume_cron_whose_end_at_passed_is_rejected() -> None:
    config = stored("cron_scheduled", cron="*/15 * * * *", end_at="2025-12-01T00:00:00Z")
    fields = plan_error_fields(
        "cron_scheduled", {"status": "active"}, status="paused", config=config
    )
    assert fields == ["status"]


# --------------------------------------------------------------------------------------------
# config changes
# --------------------------------------------------------------------------------------------


def test_interval_config_change_bumps_version_and_reschedules() -> None:
    body = {"config": {"endpoint": ENDPOINT, "every": "1m"}}
    result = plan("interval_scheduled", body)
    assert result.version == 4
    assert result.reschedule is True
    assert result.status == "active"
    assert result.config["every"] == "1m"
    assert result.config["start_at"] == "2026-01-01T10:07:30Z"  # re-anchored at the edit
    assert result.next_fire_at == NOW + timedelta(minutes=1)


def test_cron_config_change_bumps_version_and_reschedules() -> None:
    body = {"config": {"endpoint": ENDPOINT, "cron": "0 12 * * *"}}
    result = plan("cron_scheduled", body)
    assert result.version == 4
    assert result.reschedule is True
    assert result.next_fire_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_one_time_config_change_bumps_version_and_reschedules() -> None:
    body = {"config": {"endpoint": ENDPOINT, "run_in": "5m"}}
    result = plan("time_scheduled", body)
    assert result.version == 4
    assert result.reschedule is True
    assert result.config["run_at"] == "2026-01-01T10:12:30Z"
    assert result.next_fire_at == NOW + timedelta(minutes=5)


def test_non_schedule_config_change_still_bumps_version() -> None:
    body = {"config": {"endpoint": "https://other.example.com/", "cron": "*/15 * * * *"}}
    result = plan("cron_scheduled", body)
    assert result.version == 4
    assert result.reschedule is True
    assert result.next_fire_at == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)


def test_identical_config_is_not_a_change() -> None:
    body = {"config": {"endpoint": ENDPOINT, "cron": "*/15  *  * * *"}}  # normalises the same
    result = plan("cron_scheduled", body)
    assert result.version == 3
    assert result.reschedule is False
    assert result.next_fire_at is None


def test_config_change_while_paused_stays_paused() -> None:
    body = {"config": {"endpoint": ENDPOINT, "cron": "0 12 * * *"}}
    result = plan("cron_scheduled", body, status="paused")
    assert result.status == "paused"
    assert result.version == 4
    assert result.reschedule is True  # old pending occurrences (if any) go
    assert result.next_fire_at is None


def test_config_change_and_pause_together() -> None:
    body = {"status": "paused", "config": {"endpoint": ENDPOINT, "every": "5m"}}
    result = plan("interval_scheduled", body)
    assert result.status == "paused"
    assert result.version == 4
    assert result.reschedule is True
    assert result.next_fire_at is None


def test_config_change_and_resume_together() -> None:
    body = {"status": "active", "config": {"endpoint": ENDPOINT, "every": "5m"}}
    result = plan("interval_scheduled", body, status="paused")
    assert result.status == "active"
    assert result.version == 4
    assert result.next_fire_at == NOW + timedelta(minutes=5)


# --------------------------------------------------------------------------------------------
# completed one-time triggers
# --------------------------------------------------------------------------------------------


def test_completed_trigger_cannot_be_reactivated_without_new_config() -> None:
    fields = plan_error_fields("time_scheduled", {"status": "active"}, status="completed")
    assert fields == ["status"]


def test_completed_trigger_cannot_be_reactivated_with_the_same_config() -> None:
    body = {"status": "active", "config": {"endpoint": ENDPOINT, "run_at": "2026-02-01T00:00:00Z"}}
    fields = plan_error_fields("time_scheduled", body, status="completed")
    assert fields == ["status"]


@pytest.mark.parametrize("with_status", [True, False])
def test_completed_trigger_rearmed_by_new_config(with_status: bool) -> None:
    body: dict[str, Any] = {"config": {"endpoint": ENDPOINT, "run_at": "2026-03-01T09:00:00Z"}}
    if with_status:
        body["status"] = "active"
    result = plan("time_scheduled", body, status="completed")
    assert result.status == "active"
    assert result.reschedule is True
    assert result.version == 4
    assert result.next_fire_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert result.config["run_at"] == "2026-03-01T09:00:00Z"


def test_completed_trigger_rename_stays_completed() -> None:
    result = plan("time_scheduled", {"name": "archived"}, status="completed")
    assert result.status == "completed"
    assert result.name == "archived"
    assert result.reschedule is False


# --------------------------------------------------------------------------------------------
# webhook triggers have no schedule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "new_status", "version"),
    [
        ({"status": "paused"}, "active", "paused", 3),
        ({"status": "active"}, "paused", "active", 3),
        ({"config": {"endpoint": ENDPOINT, "schema": {"type": "array"}}}, "active", "active", 4),
        (
            {"status": "paused", "config": {"endpoint": ENDPOINT, "schema": {}}},
            "active",
            "paused",
            4,
        ),
    ],
)
def test_webhook_patches_never_reschedule(
    body: dict[str, Any], status: str, new_status: str, version: int
) -> None:
    result = plan("webhook", body, status=status)
    assert result.status == new_status
    assert result.version == version
    assert result.reschedule is False
    assert result.next_fire_at is None
