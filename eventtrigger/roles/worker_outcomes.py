"""The worker's outcomes: what an attempt's result means for its event (pure: `now` and
the jitter draw are passed in), and how a batch of outcomes is stored, in one
transaction with what must commit with them (dead-letter copies owed, auto-pause).
What the attempt sent and got back (the request's headers, the response's) rides along
on the Result into its history row, in the same multi-row insert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from eventtrigger.delivery import Result
from eventtrigger.domain import retry
from eventtrigger.domain.durations import parse_duration
from eventtrigger.domain.times import parse_iso
from eventtrigger.store import autopause, deliveries
from eventtrigger.store.db import Tx
from eventtrigger.store.deliveries import Attempt


def attempt_outcome(
    job: dict[str, Any],
    result: Result,
    started_at: datetime,
    duration_ms: int,
    now: datetime,
    active_window: timedelta,
    jitter_draw: float,
) -> Attempt:
    """The outcome of attempt `job["attempt"]`: success, a retry when, or failure."""
    policy = job["retry"]
    if result.permanent:
        outcome = retry.Decision("failure", None)
    else:
        outcome = retry.decide(
            attempt=int(job["attempt"]),
            max_attempts=int(policy["max_attempts"]),
            status_code=result.status_code,
            retry_after=retry.parse_retry_after(result.retry_after, now),
            initial_delay=parse_duration(policy["initial_delay"]),
            max_delay=parse_duration(policy["max_delay"]),
            now=now,
            jitter_draw=jitter_draw,
            # A Retry-After may not push the retry out of the event's active window.
            latest=parse_iso(job["fired_at"]) + active_window,
        )
    return Attempt(
        event_id=str(job["event_id"]),
        attempt=int(job["attempt"]),
        status=outcome.status,
        status_code=result.status_code,
        error=result.error,
        delivered_at=now if outcome.status == "success" else None,
        next_attempt_at=outcome.next_attempt_at,
        started_at=started_at,
        duration_ms=duration_ms,
        response_body=result.body,
        request=result.request,
        response_headers=result.response_headers,
    )


async def store_outcomes(
    tx: Tx, attempts: Sequence[Attempt], now: datetime, dead_letters_due: datetime
) -> tuple[list[bool], list[str]]:
    """Store a batch of outcomes: per attempt whether it was stored (False: a duplicate),
    and the triggers auto-paused by them."""
    stored = await deliveries.record_attempts(tx, attempts, now)
    # Counted with the outcomes, in their transaction: once each.
    done = [a for a, ok in zip(attempts, stored, strict=True) if ok]
    # The dead-letter copies are owed with the failures, in one commit, so a crash before
    # they are published cannot lose them.
    failed = [a.event_id for a in done if a.status == "failure"]
    await deliveries.owe_dead_letters(tx, failed, dead_letters_due)
    return stored, await autopause.record(tx, done, now)
