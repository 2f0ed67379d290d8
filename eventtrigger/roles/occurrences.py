"""What the scheduler fires for one due occurrence, under the trigger's scheduling
policies (misfire, jitter): the events, and the next occurrence to add.

Kept apart from the scheduler's loops so they stay about timing and batching; the
decisions themselves are pure (`domain/policies.py`).
"""

from __future__ import annotations

from datetime import datetime

from eventtrigger.domain import policies
from eventtrigger.domain.jobs import NewEvent, request_snapshot
from eventtrigger.domain.policies import Plan
from eventtrigger.domain.triggers import next_fire
from eventtrigger.ids import new_id
from eventtrigger.store.schedules import Due


def fire(
    d: Due, now: datetime, deadline: datetime
) -> tuple[list[NewEvent], tuple[datetime, datetime] | None, Plan]:
    """The events to create for occurrence `d` found due at `now`, the next occurrence as
    (fire_at, nominal) or None when the schedule has ended, and the plan followed."""
    nominal = d.nominal_at or d.fire_at  # rows from before jitter: fire_at is nominal

    def nxt(after: datetime) -> datetime | None:
        return next_fire(d.trigger_type, d.config, after)

    def fire_time(at: datetime) -> datetime:
        return policies.fire_time(d.trigger_id, d.config, at)

    plan = policies.plan(d.config, nominal, d.fire_at, now, nxt, fire_time)
    request = request_snapshot(d.config, d.signing_secret)
    events = [
        NewEvent(
            id=new_id(now),
            trigger_id=d.trigger_id,
            trigger_type=d.trigger_type,
            source="scheduled",
            # The occurrence's own fire time; a missed one's capped at now.
            scheduled_at=d.fire_at if at == nominal else min(fire_time(at), now),
            fired_at=now,
            payload=d.config.get("payload"),
            request=request,
            next_attempt_at=deadline,
            # One event per occurrence row (UNIQUE); fire_all's extra missed times have
            # no row of their own and are made in this same transaction, once.
            occurrence_id=d.id if i == 0 else None,
        )
        for i, at in enumerate(plan.fire)
    ]
    if plan.upcoming is None:
        return events, None, plan
    return events, (fire_time(plan.upcoming), plan.upcoming), plan
