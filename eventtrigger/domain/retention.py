"""Retention windows (pure). Views are computed from the fired time and `now`, so they
are exact at any instant, whatever the retention role has physically moved yet.

    fired_at >= now - active            -> "active"
    now - total <= fired_at < now - active -> "archived"
    fired_at < now - total              -> gone (never listed, 404)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Windows:
    active: timedelta
    total: timedelta

    def active_since(self, now: datetime) -> datetime:
        return now - self.active

    def kept_since(self, now: datetime) -> datetime:
        return now - self.total

    def view_of(self, fired_at: datetime, now: datetime) -> str | None:
        if fired_at >= self.active_since(now):
            return "active"
        if fired_at >= self.kept_since(now):
            return "archived"
        return None

    def bounds(self, view: str, now: datetime) -> tuple[datetime, datetime | None]:
        """[lower, upper) of fired_at for a view; upper None means open-ended."""
        if view == "active":
            return self.active_since(now), None
        return self.kept_since(now), self.active_since(now)
