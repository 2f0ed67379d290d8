"""Auto-pause (config.auto_pause_after): count consecutive final delivery failures of a
trigger's scheduled events and pause it when the count reaches the limit.

Runs inside the worker's outcome transaction, so a count can neither be lost nor made
twice (the outcomes it counts are exactly those that transaction stores). Triggers
without the setting are only read, never locked or written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from eventtrigger.domain.policies import count_failures, pause_reason
from eventtrigger.store.db import Tx, read_json
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.events import in_list
from eventtrigger.store.queries import Q


async def record(tx: Tx, finished: Sequence[Attempt], now: datetime) -> list[str]:
    """Count these stored outcomes (in order); the ids of the triggers paused now."""
    final = [a for a in finished if a.status in ("success", "failure")]
    if not final:
        return []
    ids = sorted({a.event_id for a in final})
    rows = await tx.fetch_all(in_list(Q["autopause.scheduled_events"], ids), ids)
    trigger_of = {r["id"]: r["trigger_id"] for r in rows}
    if not trigger_of:
        return []
    triggers = sorted(set(trigger_of.values()))
    configs = await tx.fetch_all(in_list(Q["autopause.configs"], triggers), triggers)
    counted = sorted(r["id"] for r in configs if _limit(r["config"]) is not None)
    if not counted:
        return []
    per: dict[str, list[Attempt]] = defaultdict(list)
    for a in final:
        if trigger_of.get(a.event_id) in counted:
            per[trigger_of[a.event_id]].append(a)
    paused = []
    for row in await tx.fetch_all(in_list(Q["autopause.lock"], counted), counted):
        limit = _limit(row["config"])
        if limit is None:  # edited meanwhile
            continue
        outcomes = per[row["id"]]
        count, pause = count_failures(
            int(row["consecutive_failures"]), [a.status for a in outcomes], limit
        )
        if pause:
            last = next(a for a in reversed(outcomes) if a.status == "failure")
            reason = pause_reason(count, last.event_id, last.error)
            await tx.execute(Q["autopause.pause"], (reason, count, now, row["id"]))
            await tx.execute(Q["autopause.cancel_occurrences"], (now, row["id"]))
            paused.append(row["id"])
        elif count != int(row["consecutive_failures"]):
            await tx.execute(Q["autopause.set_count"], (count, row["id"]))
    return paused


async def clear(tx: Tx, trigger_id: str) -> None:
    await tx.execute(Q["autopause.clear"], (trigger_id,))


def _limit(config: object) -> int | None:
    value = read_json(config) if isinstance(config, str | bytes) else config
    limit = value.get("auto_pause_after") if isinstance(value, dict) else None
    return limit if isinstance(limit, int) else None
