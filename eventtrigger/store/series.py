"""Time series for the console's charts: firings per bucket by outcome, and p50/p99 of
fire lateness and delivery latency per bucket, over the hot table and the archive.

The database groups (see queries/series.sql): a range of 100,000 events comes back as a
few hundred rows of counts, and percentiles are read from the log-scale histograms here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventtrigger.store.db import Database
from eventtrigger.store.queries import Q

# table -> (index on fired_at, index on trigger_id then fired_at)
TABLES = {
    "event_logs": ("ix_events_fired", "ix_events_trigger_fired"),
    "event_logs_archive": ("ix_archive_fired", "ix_archive_trigger_fired"),
}
STATUSES = ("success", "failure", "pending", "retrying")
STEPS_PER_DOUBLING = 4


@dataclass(frozen=True)
class Range:
    """`count` buckets of `bucket` seconds from `start` (with `ending_at`, the last one
    holding `now`); `until`, when set, ends the range early (inside the last bucket)."""

    start: datetime
    bucket: int
    count: int
    until: datetime | None = None

    @property
    def end(self) -> datetime:
        full = self.start + timedelta(seconds=self.bucket * self.count)
        return full if self.until is None else min(full, self.until)

    @classmethod
    def ending_at(cls, now: datetime, bucket: int, count: int) -> Range:
        # Buckets start on multiples of their length, so successive refreshes line up and
        # a chart shifts by whole buckets instead of wobbling.
        epoch = int(now.timestamp())
        last = epoch - epoch % bucket
        start = datetime.fromtimestamp(last - bucket * (count - 1), tz=now.tzinfo)
        return cls(start=start, bucket=bucket, count=count)


def _percentile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile, in milliseconds, of a histogram of log-scale steps -> counts."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for step in sorted(histogram):
        seen += histogram[step]
        if seen >= rank:
            # The step's geometric middle: steps are [2^(s/4), 2^((s+1)/4)) microseconds.
            micros = 2 ** ((step + 0.5) / STEPS_PER_DOUBLING)
            return round(micros / 1000, 3)
    return None  # pragma: no cover - seen reaches total


def query(table: str, trigger: bool) -> str:
    """The bucket query for one table (EXPLAIN checks in the tests use it too)."""
    by_time, by_trigger = TABLES[table]
    return Q["series.buckets"].format(
        table=table,
        index=by_trigger if trigger else by_time,
        trigger="AND trigger_id = %s" if trigger else "",
    )


async def series(db: Database, span: Range, trigger_id: str | None = None) -> list[dict[str, Any]]:
    """One point per bucket: counts by status, and p50/p99 timings in milliseconds."""
    counts = [dict.fromkeys(STATUSES, 0) for _ in range(span.count)]
    lateness: list[dict[int, int]] = [{} for _ in range(span.count)]
    latency: list[dict[int, int]] = [{} for _ in range(span.count)]
    args: tuple[Any, ...] = (span.start, span.bucket, span.start, span.end)
    if trigger_id is not None:
        args += (trigger_id,)
    # One snapshot: an event the retention role moves meanwhile is counted once.
    async with db.snapshot() as tx:
        for table in TABLES:
            rows = await tx.fetch_all(query(table, trigger_id is not None), args)
            for row in rows:
                b, n = int(row["b"]), int(row["n"])
                if not 0 <= b < span.count:
                    continue
                counts[b][row["status"]] = counts[b].get(row["status"], 0) + n
                # Lateness only means something for scheduled firings: a webhook or a test
                # run is fired the moment it is asked for.
                if row["sched"] and row["lh"] is not None:
                    step = int(row["lh"])
                    lateness[b][step] = lateness[b].get(step, 0) + n
                if row["dh"] is not None:
                    step = int(row["dh"])
                    latency[b][step] = latency[b].get(step, 0) + n
    points = []
    for i in range(span.count):
        points.append(
            {
                "start": span.start + timedelta(seconds=span.bucket * i),
                "counts": counts[i],
                "fire_lateness_ms": {
                    "p50": _percentile(lateness[i], 0.5),
                    "p99": _percentile(lateness[i], 0.99),
                },
                "delivery_latency_ms": {
                    "p50": _percentile(latency[i], 0.5),
                    "p99": _percentile(latency[i], 0.99),
                },
            }
        )
    return points
