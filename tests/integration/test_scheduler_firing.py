"""The scheduler against the real database, with a clock the test moves: a firing reads
the time after it holds its locks, and the fire-lateness histogram sees every publish of a
scheduled firing's first attempt, re-publishes included."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from eventtrigger.bus import Publisher
from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.scheduler import Scheduler
from eventtrigger.store.db import Database, read_time
from eventtrigger.store.events import insert_events
from eventtrigger.store.triggers import TriggerStore

# The interval config and clock the trigger store's tests use.
from tests.integration.test_trigger_store import INTERVAL as CONFIG
from tests.integration.test_trigger_store import NOW


class RecordingPublisher(Publisher):
    """Kafka that acknowledges everything at once and remembers it."""

    def __init__(self) -> None:  # no producer: nothing here talks to Kafka
        self.sent: list[dict[str, Any]] = []

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        self.sent += messages
        return True


def _scheduler(settings: Settings, db: Database, clock: FrozenClock) -> Scheduler:
    metrics = Metrics()
    res = Resources(
        settings=settings,
        clock=clock,
        db=db,
        health=Health(("scheduler",), {}),
        metrics=metrics,
        stats=StatsKeeper(
            db, Windows(settings.retention_active, settings.retention_total), metrics
        ),
        publisher=RecordingPublisher(),
    )
    return Scheduler(res, res.jobs)


async def _lock_waits(db: Database) -> int:
    async with db.connection() as tx:
        row = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
        )
    return int(row["n"]) if row else 0


async def test_a_firing_that_waits_for_a_lock_reads_the_time_after_it(
    migrated: Settings, db: Database
) -> None:
    fire_at = NOW + timedelta(minutes=1)
    trigger_id = new_id(NOW)
    await TriggerStore(db).create(
        trigger_id=trigger_id, name="t", kind="interval_scheduled", status="active",
        config=CONFIG, signing_secret=new_signing_secret(), first_fire=fire_at, now=NOW,
    )  # fmt: skip
    clock = FrozenClock(fire_at - timedelta(seconds=1))
    scheduler = _scheduler(migrated, db, clock)
    await scheduler._claim()
    ids = [i for _, i in scheduler._due]
    assert len(ids) == 1

    clock.advance(timedelta(seconds=1))  # the fire time
    async with db.transaction() as holder:  # an edit of the trigger, mid-transaction
        await holder.fetch_all("SELECT id FROM triggers WHERE id = %s FOR UPDATE", (trigger_id,))
        firing = asyncio.create_task(scheduler._fire(ids))
        for _ in range(500):  # until the firing waits for the trigger's lock (10 s at most)
            if await _lock_waits(db) or firing.done():
                break
            await asyncio.sleep(0.02)
        assert not firing.done()
        clock.advance(timedelta(seconds=3))  # the edit takes its time, then commits
    await firing

    async with db.connection() as tx:
        row = await tx.fetch_one(
            "SELECT fired_at, next_attempt_at FROM event_logs WHERE trigger_id = %s", (trigger_id,)
        )
    assert row is not None
    fired_at = read_time(row["fired_at"])
    # Fired when the locks were held, not when the transaction started waiting for them.
    assert fired_at == fire_at + timedelta(seconds=3)
    assert read_time(row["next_attempt_at"]) == fired_at + migrated.recovery_after


async def test_every_publish_of_a_scheduled_first_attempt_is_observed_re_publishes_included(
    migrated: Settings, db: Database
) -> None:
    lease = migrated.recovery_after

    def event(source: str = "scheduled") -> NewEvent:
        return NewEvent(
            id=new_id(NOW), trigger_id=new_id(NOW),
            trigger_type="interval_scheduled" if source == "scheduled" else "webhook",
            source=source, scheduled_at=NOW, fired_at=NOW, payload=None,
            request={**{k: CONFIG[k] for k in ("method", "headers", "timeout", "retry")},
                     "url": CONFIG["endpoint"], "signing_secret": new_signing_secret()},
            next_attempt_at=NOW + lease, occurrence_id=None,
        )  # fmt: skip

    first, retry, webhook_call = event(), event(), event("api")
    async with db.transaction() as tx:
        await insert_events(tx, [first, retry, webhook_call], NOW)
        await tx.execute(
            "UPDATE event_logs SET status = 'retrying', attempts = 1 WHERE id = %s", (retry.id,)
        )
    clock = FrozenClock(NOW + lease + timedelta(seconds=1))
    scheduler = _scheduler(migrated, db, clock)
    registry = scheduler.res.metrics.registry

    def observed() -> tuple[float | None, float | None]:
        return (
            registry.get_sample_value("eventtrigger_fire_lateness_seconds_count"),
            registry.get_sample_value("eventtrigger_fire_lateness_seconds_sum"),
        )

    late = (lease + timedelta(seconds=1)).total_seconds()
    await scheduler.republisher._republish(
        clock.now()
    )  # the first publish was lost (or the process died)
    assert len(scheduler.publisher.sent) == 3  # type: ignore[attr-defined]
    assert observed() == (1, late)  # the scheduled first attempt: no retry, no webhook call

    clock.advance(lease + timedelta(seconds=1))  # lost again: re-published again
    await scheduler.republisher._republish(clock.now())
    assert len(scheduler.publisher.sent) == 6  # type: ignore[attr-defined]
    assert observed() == (2, late + late + (lease + timedelta(seconds=1)).total_seconds())
