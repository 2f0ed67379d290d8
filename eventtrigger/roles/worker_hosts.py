"""The worker's per-host bookkeeping (pure): the jobs it holds, each host's state, how
much a host may hold in memory (a few seconds of its pace, a few rounds of its slots),
and which jobs of a batch are held or parked, with their due times.

A host is an endpoint (`endpoint_key`: scheme, host, port), so `Example.com` and
`example.com:80` share one limit. A job parked for a busy host gets a due time at the
host's pace after what it already holds and after the host's line of parked jobs, so
parked jobs come back in order as it drains; a job coming back from that line goes
ahead of jobs that arrived after it.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from eventtrigger.domain.jobs import BadJob, decode_job, endpoint_key

SOON_SECONDS = 5.0  # a host holds about this many seconds of its throughput in memory ...
SOON_ROUNDS = 4  # ... and at least this many rounds of its slots; the rest is parked


@dataclass
class Held:
    """A leased job in this process: queued for its host, then in flight."""

    tp: TopicPartition
    offset: int
    job: dict[str, Any]
    host: str
    # Offsets of copies of the same job that arrived while we held it: settled with it.
    twins: list[tuple[TopicPartition, int]] = field(default_factory=list)
    started: bool = False
    counted: bool = False  # in its host's `held` count until settled
    # Why its event's signing secret could not be decrypted here (None: it could).
    secret_error: str | None = None

    @property
    def event_id(self) -> str:
        return str(self.job["event_id"])

    @property
    def attempt(self) -> int:
        return int(self.job["attempt"])


@dataclass
class Host:
    queue: deque[Held] = field(default_factory=deque)
    active: int = 0
    held: int = 0  # queued + in flight + outcome not yet stored
    seconds: float = 0.1  # moving average of a delivery's duration
    started: dict[int, float] = field(default_factory=dict)  # in flight: id(item) -> start
    parked_until: datetime | None = None  # due time of the last job parked for it

    def idle(self, now: datetime) -> bool:
        """Nothing queued, in flight or held, and no line of parked jobs: forgettable."""
        line = self.parked_until is not None and self.parked_until > now
        return not self.queue and not self.active and not self.held and not line

    def delivery_seconds(self, monotonic: float) -> float:
        """How long a delivery takes: the moving average, or longer while the oldest one
        in flight has already taken longer (a host that stopped answering shows at once)."""
        oldest = min(self.started.values(), default=monotonic)
        return max(self.seconds, monotonic - oldest)


def soon_cap(per_host: int, seconds: float, hard_cap: int) -> int:
    """Jobs a host may hold in memory: what it works through in SOON_SECONDS at `per_host`
    deliveries of `seconds` each, at least SOON_ROUNDS rounds of its slots (pure)."""
    pace = per_host / max(seconds, 1e-3)
    return max(1, min(hard_cap, max(per_host * SOON_ROUNDS, int(pace * SOON_SECONDS))))


@dataclass
class Plan:
    """Where the jobs of a batch go: held here, or parked until a due time."""

    keep: list[Held] = field(default_factory=list)
    park: dict[str, datetime] = field(default_factory=dict)  # event id -> due time
    lines: dict[str, datetime] = field(default_factory=dict)  # host -> its line's new end


def plan_batch(
    items: list[Held],
    returning: dict[str, bool],
    hosts: dict[str, tuple[int, int, float, datetime | None]],
    per_host: int,
    now: datetime,
) -> Plan:
    """Hold or park each leased job of a batch, in order (pure).

    `hosts`: per host, (jobs held, cap, seconds per delivery, end of its parked line). A
    job is held if its host has room and either no line of parked jobs is waiting or the
    job comes back from that line (`returning`); otherwise it is parked: a new job at the
    end of the line, one more delivery time apart at the host's pace, a returning one
    for when the host has worked through what it holds.
    """
    plan = Plan()
    planned: dict[str, int] = defaultdict(int)
    for item in items:
        held, cap, seconds, line = hosts[item.host]
        line = plan.lines.get(item.host, line)
        waiting_line = line is not None and line > now
        load = held + planned[item.host]
        if load < cap and (returning.get(item.event_id, False) or not waiting_line):
            planned[item.host] += 1
            plan.keep.append(item)
            continue
        step = timedelta(seconds=max(seconds, 1e-3) / per_host)
        drained = now + step * load
        if returning.get(item.event_id, False):
            plan.park[item.event_id] = drained
        else:
            due = max(drained, line if waiting_line and line is not None else now) + step
            plan.park[item.event_id] = due
            plan.lines[item.host] = due
    return plan


@dataclass
class ParkedLog:
    """Jobs parked for one host since the last `parked` line."""

    since: datetime
    first_due: datetime
    last_due: datetime
    count: int = 0
    sample: list[str] = field(default_factory=list)  # a few of their event ids


def read_job(value: bytes | None) -> tuple[dict[str, Any], str]:
    """A message as a job and its host (`endpoint_key`), or BadJob: whatever the bytes,
    nothing else is raised, so no input can take the worker down (pure)."""
    try:
        job = decode_job(value)
        return job, endpoint_key(job["request"]["url"])
    except BadJob:
        raise
    except Exception as exc:
        raise BadJob("bad_field", f"unusable job: {type(exc).__name__}") from None
