"""Time as the API and the job messages write it (pure): RFC 3339 in UTC, one parser for
what users send, and the far end of every open time range.

Every "now" comes from `clock.py`; this module only formats and parses.
"""

from __future__ import annotations

from datetime import UTC, datetime

# The upper bound of an open time range ("until" not given) in SQL comparisons.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def iso(value: datetime) -> str:
    """UTC, `Z`, microseconds only when there are any."""
    value = value.astimezone(UTC)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """A time we wrote ourselves (`iso`, stored snapshots, job messages), in UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def parse_rfc3339(value: str) -> datetime:
    """A time a user sent, in UTC. It must carry an offset (`Z` or `+hh:mm`); ValueError
    otherwise, or when it leaves datetime's range once moved to UTC (year 1 or 9999 with
    an offset)."""
    parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is out of range in UTC") from exc
