"""The scheduler against the real database, with a clock the test moves: a row held by
another transaction delays no other trigger and fires once when freed, reading the time
after it holds its locks; a firing that keeps failing is recorded as failed, logged,
counted and shown by /health; and the fire-lateness histogram sees every publish of a
scheduled firing's first attempt, re-publishes included."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from loguru import logger

from eventtrigger.bus import Publisher
from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent, event_dict, job_message
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.scheduler import Scheduler
from eventtrigger.store.db import Database, Row, read_time
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


def _scheduler(
    settings: Settings, db: Database, clock: FrozenClock, health: Health | None = None
) -> Scheduler:
    metrics = Metrics()
    res = Resources(
        settings=settings,
        clock=clock,
        db=db,
        health=health or Health(("scheduler",), {}),
        metrics=metrics,
        stats=StatsKeeper(
            db, Windows(settings.retention_active, settings.retention_total), metrics
        ),
        publisher=RecordingPublisher(),
    )
    return Scheduler(res, res.jobs)


# Longer than firing a few occurrences takes, far shorter than InnoDB's 50 s lock wait.
NO_WAIT = 5.0


async def _trigger(db: Database, fire_at: datetime) -> str:
    trigger_id = new_id(NOW)
    await TriggerStore(db).create(
        trigger_id=trigger_id, name="t", kind="interval_scheduled", status="active",
        config=CONFIG, signing_secret=new_signing_secret(), first_fire=fire_at, now=NOW,
    )  # fmt: skip
    return trigger_id


async def _events(db: Database, trigger_id: str) -> list[Row]:
    async with db.connection() as tx:
        return await tx.fetch_all(
            "SELECT id, status, fired_at, next_attempt_at, last_error FROM event_logs"
            " WHERE trigger_id = %s",
            (trigger_id,),
        )


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = NO_WAIT) -> bool:
    """Whether `check` came true within `timeout` seconds (polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@contextlib.asynccontextmanager
async def _firing(scheduler: Scheduler) -> AsyncIterator[None]:
    """The scheduler's firing loop, running."""
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler._fire_loop(stop))
    try:
        yield
    finally:
        stop.set()
        scheduler._wake.set()
        await loop


@contextlib.asynccontextmanager
async def _refused_inserts(db: Database, trigger_id: str, errno: int) -> AsyncIterator[None]:
    """A server-side trigger failing every new occurrence of `trigger_id` with `errno`: a
    real database error in the middle of a firing transaction."""
    async with db.connection() as tx:
        await tx.execute(
            "CREATE TRIGGER et_test_refuse BEFORE INSERT ON trigger_schedules FOR EACH ROW"
            f" BEGIN IF NEW.trigger_id = '{trigger_id}' THEN SIGNAL SQLSTATE '45000'"
            f" SET MYSQL_ERRNO = {errno}, MESSAGE_TEXT = 'refused by the test'; END IF; END"
        )
    try:
        yield
    finally:
        async with db.connection() as tx:
            await tx.execute("DROP TRIGGER IF EXISTS et_test_refuse")


def _tick(scheduler: Scheduler, clock: FrozenClock) -> None:
    """Time passes (a retry is due a second after a failure)."""
    clock.advance(timedelta(milliseconds=250))
    scheduler._wake.set()


@pytest.mark.parametrize("table", ["triggers", "trigger_schedules"])
async def test_a_row_held_by_another_transaction_delays_no_other_trigger_and_fires_once_after(
    migrated: Settings, db: Database, table: str
) -> None:
    """An operator's open transaction holds one trigger's row (or its occurrence's): the
    other triggers of the same batch fire at once, and the held one fires exactly once
    when the lock goes, reading the time after it holds its locks."""
    fire_at = NOW + timedelta(minutes=1)
    held = await _trigger(db, fire_at)
    others = [await _trigger(db, fire_at) for _ in range(3)]
    clock = FrozenClock(fire_at - timedelta(seconds=1))
    scheduler = _scheduler(migrated, db, clock)
    await scheduler._claim()
    assert len(scheduler._due) == 4
    clock.advance(timedelta(seconds=1))  # the fire time

    async def others_fired() -> bool:
        return all([len(await _events(db, t)) == 1 for t in others])

    async def held_fired() -> bool:
        return len(await _events(db, held)) > 0

    async def held_fired_later() -> bool:
        _tick(scheduler, clock)  # its next try comes
        return await held_fired()

    async def settled() -> bool:  # nothing claimed left in memory: no try to come
        return not scheduler._known

    column = "id" if table == "triggers" else "trigger_id"
    async with _firing(scheduler):
        async with db.transaction() as holder:
            await holder.fetch_all(
                f"SELECT id FROM {table} WHERE {column} = %s FOR UPDATE", (held,)
            )
            assert await _until(others_fired)  # not after InnoDB's 50 s lock wait
            assert not await held_fired()
            clock.advance(timedelta(seconds=3))  # the operator takes a while, then commits
        assert await _until(held_fired_later)
        assert await _until(settled)
    rows = await _events(db, held)
    assert len(rows) == 1  # exactly once, however many tries it took
    fired_at = read_time(rows[0]["fired_at"])
    assert fired_at is not None and fired_at >= fire_at + timedelta(seconds=3)
    assert read_time(rows[0]["next_attempt_at"]) == fired_at + migrated.recovery_after


async def test_an_occurrence_whose_firing_keeps_failing_is_recorded_failed_and_the_rest_fire(
    migrated: Settings, db: Database
) -> None:
    """A firing transaction that fails with a database error that is not transient (here
    the next occurrence of one trigger is refused): the others of its batch fire, the
    broken one is recorded as failed after MAX_FIRE_ATTEMPTS, logged and counted."""
    fire_at = NOW + timedelta(minutes=1)
    broken = await _trigger(db, fire_at)
    healthy = [await _trigger(db, fire_at) for _ in range(3)]
    clock = FrozenClock(fire_at - timedelta(seconds=1))
    scheduler = _scheduler(migrated, db, clock)
    await scheduler._claim()
    clock.advance(timedelta(seconds=1))
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(m.record["extra"]), level="WARNING")

    async def done() -> bool:
        _tick(scheduler, clock)  # the retries' time comes
        fired = [len(await _events(db, t)) == 1 for t in [broken, *healthy]]
        return all(fired) and not scheduler._known

    try:
        async with _refused_inserts(db, broken, 1406), _firing(scheduler):
            assert await _until(done, timeout=3 * NO_WAIT)
    finally:
        logger.remove(sink)
    [failed] = await _events(db, broken)
    assert failed["status"] == "failure"
    assert "firing failed 3 times (DataError" in failed["last_error"]
    registry = scheduler.res.metrics.registry
    assert registry.get_sample_value("eventtrigger_schedule_errors_total") == 1
    assert [x for x in lines if x.get("action") == "fire_failed"]  # each failure, logged
    assert [x for x in lines if x.get("action") == "fire_failed_for_good"]
    async with db.connection() as tx:  # nothing of it is left to re-claim
        left = await tx.fetch_all(
            "SELECT status FROM trigger_schedules WHERE trigger_id = %s", (broken,)
        )
    assert [r["status"] for r in left] == ["completed"]
    for t in healthy:
        [event] = await _events(db, t)
        assert event["status"] != "failure"


async def test_health_names_the_firing_loop_while_every_firing_fails(
    migrated: Settings, db: Database
) -> None:
    """The firing loop beats while idle (it wakes every second); while each of its
    firings fails it falls silent, so /health names it once stale; it beats again when a
    firing goes through."""
    beats = [1000.0]
    health = Health(("scheduler",), {}, monotonic=lambda: beats[0])
    fire_at = NOW + timedelta(minutes=1)
    trigger = await _trigger(db, fire_at)
    clock = FrozenClock(fire_at - timedelta(seconds=30))
    scheduler = _scheduler(migrated, db, clock, health)

    async def firing_age() -> float | None:
        health.beat("scheduler")  # the claim loop, not run here
        _, body = await health.report()
        age = body["roles"]["scheduler"]["loops"].get("firing")
        return None if age is None else float(age)

    async def stalled() -> list[str]:
        health.beat("scheduler")
        _, body = await health.report()
        return list(body["roles"]["scheduler"]["stalled_loops"])

    async def fresh() -> bool:
        _tick(scheduler, clock)
        return await firing_age() == 0

    async def failed_once() -> bool:
        return bool(scheduler._failing)

    async with _firing(scheduler):
        beats[0] += 31  # idle for longer than stale_after: it has beaten since
        assert await _until(fresh)
        assert await stalled() == []
        # 1644: a plain SIGNAL, an OperationalError, which a firing takes for transient.
        async with _refused_inserts(db, trigger, 1644):
            clock.advance(fire_at - clock.now())
            await scheduler._claim()
            assert await _until(failed_once)
            beats[0] += 31
            assert await _until(failed_once)  # still failing, a turn later
            assert await stalled() == ["firing"]
        assert await _until(fresh, timeout=NO_WAIT)  # fires on its next try, beats again
        assert await stalled() == []
    assert len(await _events(db, trigger)) == 1


class _LagUnreadable:
    """The workers' group offsets cannot be read: overdue rows count as lost."""

    async def lag(self) -> None:
        return None

    async def close(self) -> None:
        pass


async def test_fire_lateness_is_observed_at_the_first_publish_and_never_at_a_re_publish(
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
    clock = FrozenClock(NOW + timedelta(seconds=1))
    scheduler = _scheduler(migrated, db, clock)
    scheduler.republisher.lag = _LagUnreadable()  # type: ignore[assignment]
    registry = scheduler.res.metrics.registry

    def observed() -> tuple[float | None, float | None]:
        return (
            registry.get_sample_value("eventtrigger_fire_lateness_seconds_count"),
            registry.get_sample_value("eventtrigger_fire_lateness_seconds_sum"),
        )

    # The scheduler's own publish of the three: only the scheduled first attempt counts.
    scheduler._published([job_message(event_dict(e)) for e in (first, webhook_call)], True)
    assert observed() == (1, 1.0)

    # Its deadline passes (the message was lost): the re-publish sends all three again
    # and counts nothing, so an event's lateness is in the histogram once.
    clock.advance(lease + timedelta(seconds=1))
    await scheduler.republisher._republish(clock.now())
    assert len(scheduler.publisher.sent) == 3  # type: ignore[attr-defined]
    assert observed() == (1, 1.0)
