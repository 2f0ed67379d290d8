"""Audit rows and the retention role, against the real database with a controlled `now`:
rows older than EVENTTRIGGER_AUDIT_RETENTION go, in bounded batches each heard from (the
role's heartbeat), younger ones stay, and a stopped pass leaves them for the next."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.domain.audit import audit_entry
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles import retention
from eventtrigger.roles.api.principal import Principal
from eventtrigger.roles.retention import run_once
from eventtrigger.store import audit
from eventtrigger.store.db import Database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=90)
WINDOWS = Windows(active=timedelta(hours=2), total=timedelta(hours=48))
KEY = Principal(key_id="k", key_name="retention test", scopes=frozenset())


@pytest.fixture
async def clean(db: Database) -> Database:
    async with db.connection() as tx:
        await tx.execute("DELETE FROM audit_log")
    return db


async def _write(db: Database, ages: list[timedelta], target: str) -> None:
    async with db.transaction() as tx:
        for age in ages:
            entry = audit_entry(KEY, "trigger.update", target, None, ["name"], at=NOW - age)
            await audit.record(tx, entry)


async def _targets(db: Database) -> dict[str, int]:
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT target_id, COUNT(*) AS n FROM audit_log GROUP BY target_id"
        )
    return {r["target_id"]: int(r["n"]) for r in rows}


async def test_rows_past_the_audit_retention_go_and_younger_ones_stay(clean: Database) -> None:
    us = timedelta(microseconds=1)
    await _write(clean, [KEEP + us, KEEP + timedelta(days=30), KEEP * 3], "old")
    await _write(clean, [KEEP, KEEP - us, timedelta(0), timedelta(days=1)], "young")

    done = await run_once(clean, WINDOWS, NOW, audit_retention=KEEP)

    assert done["pruned_audit"] == 3
    assert await _targets(clean) == {"young": 4}


async def test_without_an_audit_retention_the_pass_leaves_audit_rows_alone(
    clean: Database,
) -> None:
    await _write(clean, [KEEP * 2], "old")
    done = await run_once(clean, WINDOWS, NOW)
    assert "pruned_audit" not in done
    assert await _targets(clean) == {"old": 1}


async def test_audit_rows_go_in_bounded_batches_each_heard_from(clean: Database) -> None:
    await _write(clean, [KEEP + timedelta(minutes=m) for m in range(1, 26)], "old")
    await _write(clean, [timedelta(minutes=1)], "young")
    heard: list[int] = []

    def more() -> bool:
        heard.append(1)
        return True

    done = await run_once(clean, WINDOWS, NOW, size=10, more=more, audit_retention=KEEP)

    assert done["pruned_audit"] == 25
    # One (empty) batch per event step (move, hot, archive, occurrences, keys), then the
    # audit deletes: 10, 10, 5.
    assert len(heard) == 5 + 3
    assert await _targets(clean) == {"young": 1}


async def test_a_pass_stopped_before_the_audit_step_leaves_the_rows_for_the_next(
    clean: Database,
) -> None:
    await _write(clean, [KEEP * 2] * 3, "old")
    done = await run_once(clean, WINDOWS, NOW, more=lambda: False, audit_retention=KEEP)
    assert done == {"moved": 0}
    assert await _targets(clean) == {"old": 3}
    again = await run_once(clean, WINDOWS, NOW, audit_retention=KEEP)
    assert again["pruned_audit"] == 3


class StopAt(Health):
    """Counts the role's beats and sets `stop` at the `stop_at`-th."""

    def __init__(self, stop: asyncio.Event, stop_at: int) -> None:
        super().__init__(("retention",), {})
        self.beats = 0
        self._stop = stop
        self._stop_at = stop_at

    def beat(self, role: str, loop: str | None = None) -> None:
        super().beat(role, loop)
        self.beats += 1
        if self.beats == self._stop_at:
            self._stop.set()


async def test_the_role_prunes_by_its_setting_and_beats_per_batch(
    clean: Database, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role passes EVENTTRIGGER_AUDIT_RETENTION; each audit batch is a beat."""
    await _write(clean, [timedelta(days=8) + timedelta(minutes=m) for m in range(30)], "old")
    await _write(clean, [timedelta(days=6)], "young")
    monkeypatch.setattr(retention, "BATCH", 10)
    settings = replace(migrated, audit_retention=timedelta(days=7))
    stop = asyncio.Event()
    # The loop's beat, one (empty) batch per event step, then the audit batches 10, 10,
    # 10 and the empty one that ends them: the pass's last beat.
    health = StopAt(stop, stop_at=1 + 5 + 4)
    res = Resources(
        settings=settings,
        clock=FrozenClock(NOW),
        db=clean,
        health=health,
        metrics=Metrics(),
        stats=StatsKeeper(clean, WINDOWS, Metrics()),
    )
    await asyncio.wait_for(retention.run(res, stop), 10)
    assert health.beats == 10
    assert await _targets(clean) == {"young": 1}
