"""The worker's pure decisions: a message it cannot use is refused with a reason (never
an exception of another kind, which would take the worker down and crash-loop the fleet
on the same offset); hosts are keyed by endpoint; a host holds a few seconds of its pace
in memory and parks the rest in order; the re-publisher tells lag from loss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from eventtrigger.domain.jobs import BadJob
from eventtrigger.roles.republisher import Lag, partition_of, triage
from eventtrigger.roles.worker_hosts import Held, plan_batch, read_job, soon_cap

GOOD: dict[str, Any] = {
    "v": 1,
    "event_id": "01M8EB65ENESE1SX21MRKX0J32",
    "trigger_id": None,
    "trigger_type": "webhook",
    "source": "api",
    "is_test_run": False,
    "scheduled_at": "2026-01-01T00:00:00Z",
    "fired_at": "2026-01-01T00:00:00Z",
    "attempt": 1,
    "request": {"url": "http://Example.com/x", "method": "POST", "headers": {}, "body": None},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "signing_secret": "whsec_x",
}
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_complete_job_reads_with_its_endpoint_as_host() -> None:
    assert read_job(orjson.dumps(GOOD)) == (GOOD, "http://example.com:80")


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"request": {**GOOD["request"], "url": "http://[::1/x"}}, "bad_url"),
        ({"fired_at": None}, "bad_field"),
        ({"timeout": "soon"}, "bad_field"),
        ({"attempt": 0}, "bad_field"),
    ],
)
def test_a_job_with_a_field_it_cannot_use_is_refused_with_a_reason(
    broken: dict[str, Any], reason: str
) -> None:
    with pytest.raises(BadJob) as refused:
        read_job(orjson.dumps({**GOOD, **broken}))
    assert refused.value.reason == reason


@pytest.mark.parametrize("missing", ["fired_at", "trigger_id", "event_id", "request"])
def test_a_job_missing_a_field_is_refused(missing: str) -> None:
    with pytest.raises(BadJob) as refused:
        read_job(orjson.dumps({k: v for k, v in GOOD.items() if k != missing}))
    assert refused.value.reason == "missing_field"


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", None, b"x" * 2_000_000])
def test_unreadable_bytes_are_refused(raw: bytes | None) -> None:
    with pytest.raises(BadJob):
        read_job(raw)


def test_a_host_holds_a_few_seconds_of_its_pace_and_a_few_rounds_of_slots() -> None:
    assert soon_cap(per_host=32, seconds=1.0, hard_cap=8192) == 160  # 5 s at 32/s
    assert soon_cap(per_host=32, seconds=30.0, hard_cap=8192) == 128  # 4 rounds at least
    assert soon_cap(per_host=32, seconds=0.001, hard_cap=8192) == 8192  # never past the cap


def _held(n: int, host: str = "h") -> Held:
    return Held(TopicPartition("t", 0), n, {"event_id": f"e{n}", "attempt": 1}, host)


def test_new_jobs_past_the_cap_are_parked_in_order_at_the_hosts_pace() -> None:
    items = [_held(n) for n in range(5)]
    plan = plan_batch(items, {}, {"h": (2, 3, 2.0, None)}, per_host=2, now=NOW)
    assert plan.keep == items[:1]  # room for one more
    step = timedelta(seconds=1)  # 2 s a delivery, 2 slots
    # After the 3 it holds, one step apart, in arrival order.
    assert [plan.park[f"e{n}"] for n in range(1, 5)] == [NOW + step * k for k in (4, 5, 6, 7)]
    assert plan.lines == {"h": NOW + 7 * step}


def test_while_a_line_waits_new_jobs_join_it_and_returning_ones_go_first() -> None:
    line = NOW + timedelta(seconds=30)
    new, back = _held(1), _held(2)
    plan = plan_batch([new, back], {"e2": True}, {"h": (0, 4, 1.0, line)}, 1, NOW)
    assert plan.keep == [back]
    assert plan.park == {"e1": line + timedelta(seconds=1)}


def _row(event_id: str, publish_due: bool = False, mark: int | None = None) -> dict[str, Any]:
    return {"id": event_id, "trigger_id": None, "publish_due": publish_due, "lag_mark": mark}


def test_lag_is_not_loss_but_a_job_the_group_has_passed_is_lost() -> None:
    owed, behind, passed = _row("a", publish_due=True), _row("b"), _row("c", mark=5)
    assert (partition_of(behind, 4), partition_of(passed, 4)) == (0, 2)  # the key's hash
    # Partition 0: committed 3 of 9, its job may be queued. Partition 2: committed up
    # to 5, the end when c's deadline passed, so c's message was consumed and c is lost.
    plan = triage([owed, behind, passed], Lag(4, {0: 3, 2: 5}, {0: 9, 2: 9}))
    assert plan.owed == [owed]
    assert plan.lost == [passed]
    assert plan.waiting == {0: [behind]}
    # Without a reading of the lag (Kafka unreachable), overdue means lost: at least once.
    assert triage([behind], None).lost == [behind]
    # A row needing the lag in a turn that did not read it is left alone.
    assert triage([behind], None, read=False).unread == [behind]
