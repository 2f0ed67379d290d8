"""Per-trigger event counts (the `aggregate=trigger` view), paged by trigger id.

Both tables are read in one snapshot, so an event moving to the archive while a page is
read counts once. A page lists `limit` triggers, newest trigger first; the cursor is the
last trigger id listed, so pages neither skip nor repeat a trigger while events arrive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventtrigger.store.db import Database, read_time
from eventtrigger.store.queries import Q

TABLES = ("event_logs", "event_logs_archive")
STATUSES = ("success", "failure", "pending", "retrying")


async def page(
    db: Database, *, since: datetime, before_id: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` triggers with events fired at or after `since` and an id below
    `before_id` (None: from the newest): counts by status, total and last fired time."""
    async with db.snapshot() as tx:
        found: set[str] = set()
        for table in TABLES:
            query = Q["aggregate.trigger_ids"].format(table=table)
            rows = await tx.fetch_all(query, (since, before_id, before_id, limit))
            found.update(r["trigger_id"] for r in rows)
        ids = sorted(found, reverse=True)[:limit]
        per: dict[str, dict[str, Any]] = {}
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            for table in TABLES:
                query = Q["aggregate.counts"].format(table=table, ids=marks)
                for row in await tx.fetch_all(query, (*ids, since)):
                    _add(per, row)
    items = [per[i] for i in ids]
    for item in items:
        item["counts"]["total"] = sum(item["counts"].values())
    return items


def _add(per: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    item = per.setdefault(
        row["trigger_id"],
        {
            "trigger_id": row["trigger_id"],
            "trigger_type": row["trigger_type"],
            "counts": dict.fromkeys(STATUSES, 0),
            "last_fired_at": None,
        },
    )
    item["counts"][row["status"]] = item["counts"].get(row["status"], 0) + int(row["n"])
    last = read_time(row["last_fired_at"])
    if last is not None and (item["last_fired_at"] is None or last > item["last_fired_at"]):
        item["last_fired_at"] = last
