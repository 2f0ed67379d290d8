"""Tests for eventtrigger.domain.schedule: cron (5- and 6-field, time zones, DST), intervals,
one-shots. Expected values are written out by hand as UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eventtrigger.domain.schedule import cron_error, next_cron, next_interval, next_once

NY = "America/New_York"
LONDON = "Europe/London"
KOLKATA = "Asia/Kolkata"
LORD_HOWE = "Australia/Lord_Howe"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(
    tz: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz), fold=fold)


def fires(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], found by feeding each result back in as `after`."""
    out: list[datetime] = []
    t: datetime | None = start
    while t is not None:
        t = next_cron(expr, tz, t, end_at=end)
        if t is not None:
            out.append(t)
        assert len(out) < 1000, "runaway iteration"
    return out


# --------------------------------------------------------------------------------------------
# cron_error
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/15 * * * *",
        "0 9 * * 1-5",
        "0,30 8-18/2 1,15 JAN-jun mon-FRI",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 * * 5L",
        "0 0 * * MON#2",
        "0 0 * * 7",
        "0 0 29 2 *",  # only in leap years, but it does fire
        "0 0 30 2 MON",  # day-of-month OR day-of-week: fires on Mondays in February
        "  0\t9 *  * *  ",  # any whitespace separates fields
        "*/10 * * * * *",  # 6 fields: seconds first
        "0 30 2 * * *",
        "59 59 23 31 12 *",
    ],
)
def test_cron_error_accepts_valid_expressions(expr: str) -> None:
    assert cron_error(expr) is None


@pytest.mark.parametrize(
    ("expr", "fragments"),
    [
        ("", ["5 fields", "got 0"]),
        ("* * * *", ["5 fields", "6 with seconds first", "got 4"]),
        ("* * * * * * *", ["got 7"]),
        ("@daily", ["got 1"]),
        ("hello world", ["got 2"]),
        ("61 * * * *", ["minute", "'61'", "0-59"]),
        ("* 24 * * *", ["hour", "'24'", "0-23"]),
        ("* * 0 * *", ["day-of-month", "'0'"]),
        ("* * 32 * *", ["day-of-month", "'32'"]),
        ("* * * 13 *", ["month", "'13'"]),
        ("* * * * 8", ["day-of-week", "'8'"]),
        ("* * * * MON#6", ["day-of-week", "'MON#6'"]),
        ("60 * * * * *", ["second", "'60'", "0-59"]),
        ("0 60 * * * *", ["minute", "'60'"]),
        ("0 0 24 * * *", ["hour", "'24'"]),
        ("5-1 * * * *", ["minute", "'5-1'"]),
        ("*/0 * * * *", ["minute", "'*/0'"]),
        ("a b c d e", ["minute", "'a'"]),
        ("0 0 ? * *", ["day-of-month", "'?'"]),
        ("1,,2 * * * *", ["minute"]),
        ("0 0 30 2 *", ["never fires", "'30'", "'2'"]),
        ("0 0 31 4,6,9,11 *", ["never fires"]),
        ("0 0 0 30 2 *", ["never fires"]),
        ("* * */20 * 1L", ["never fires"]),  # the 1st or 21st that is also a month's last Monday
    ],
)
def test_cron_error_explains_invalid_expressions(expr: str, fragments: list[str]) -> None:
    message = cron_error(expr)
    assert message is not None
    for fragment in fragments:
        assert fragment in message


# --------------------------------------------------------------------------------------------
# next_cron: basics, 6-field, time zones, bounds
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        # plain 5-field in UTC
        ("*/15 * * * *", "UTC", utc(2025, 1, 1, 12, 7), utc(2025, 1, 1, 12, 15)),
        ("0 9 * * *", "UTC", utc(2025, 1, 1, 10), utc(2025, 1, 2, 9)),
        # strictly after: a fire exactly at `after` is not returned again
        ("*/15 * * * *", "UTC", utc(2025, 1, 1, 12, 15), utc(2025, 1, 1, 12, 30)),
        # ... but one microsecond before it is
        (
            "*/15 * * * *",
            "UTC",
            utc(2025, 1, 1, 12, 14, 59, 999_999),
            utc(2025, 1, 1, 12, 15),
        ),
        ("0 * * * *", "UTC", utc(2025, 1, 1, 12, 0, 0, 1), utc(2025, 1, 1, 13)),
        # weekdays: 2025-01-03 is a Friday, so the next weekday 09:00 is Monday the 6th
        ("0 9 * * 1-5", "UTC", utc(2025, 1, 3, 9, 30), utc(2025, 1, 6, 9)),
        ("0 0 * * MON#2", "UTC", utc(2025, 1, 1), utc(2025, 1, 13)),
        ("0 0 L 2 *", "UTC", utc(2024, 1, 1), utc(2024, 2, 29)),
        ("0 0 29 2 *", "UTC", utc(2025, 1, 1), utc(2028, 2, 29)),
        # 6-field, seconds first
        ("*/10 * * * * *", "UTC", utc(2025, 1, 1, 12, 0, 5), utc(2025, 1, 1, 12, 0, 10)),
        ("*/10 * * * * *", "UTC", utc(2025, 1, 1, 12, 0, 50), utc(2025, 1, 1, 12, 1, 0)),
        ("30 0 12 * * *", "UTC", utc(2025, 1, 1), utc(2025, 1, 1, 12, 0, 30)),
        ("0 30 12 * * *", "UTC", utc(2025, 1, 1), utc(2025, 1, 1, 12, 30, 0)),
        ("15,45 * * * * *", "UTC", utc(2025, 1, 1, 0, 0, 15), utc(2025, 1, 1, 0, 0, 45)),
        # time zones: local wall-clock times, returned as UTC
        ("0 9 * * *", NY, utc(2025, 1, 15), utc(2025, 1, 15, 14)),  # EST, UTC-5
        ("0 9 * * *", NY, utc(2025, 7, 15), utc(2025, 7, 15, 13)),  # EDT, UTC-4
        ("0 9 * * *", LONDON, utc(2025, 1, 15), utc(2025, 1, 15, 9)),  # GMT
        ("0 9 * * *", LONDON, utc(2025, 7, 15), utc(2025, 7, 15, 8)),  # BST, UTC+1
        ("0 9 * * *", KOLKATA, utc(2025, 1, 15), utc(2025, 1, 15, 3, 30)),  # UTC+5:30
        ("30 0 * * *", KOLKATA, utc(2025, 1, 15), utc(2025, 1, 15, 19)),  # previous UTC day
        ("0 */6 * * *", KOLKATA, utc(2025, 1, 15, 1), utc(2025, 1, 15, 6, 30)),  # 12:00 IST
        ("0 9 * * *", LORD_HOWE, utc(2025, 1, 15), utc(2025, 1, 15, 22)),  # +11:00 summer
        ("0 9 * * *", LORD_HOWE, utc(2025, 7, 15), utc(2025, 7, 15, 22, 30)),  # +10:30
        # the day-of-week is judged in local time: Monday 00:30 IST is Sunday 19:00 UTC
        ("30 0 * * MON", KOLKATA, utc(2025, 1, 1), utc(2025, 1, 5, 19)),
        # `after` in another zone is the same instant
        ("0 9 * * *", NY, local(KOLKATA, 2025, 1, 15, 5, 30), utc(2025, 1, 15, 14)),
    ],
)
def test_next_cron(expr: str, tz: str, after: datetime, expected: datetime) -> None:
    result = next_cron(expr, tz, after)
    assert result == expected
    assert result is not None and result.tzinfo is UTC


@pytest.mark.parametrize(
    ("after", "start_at", "end_at", "expected"),
    [
        # no bounds
        (utc(2025, 1, 1, 10), None, None, utc(2025, 1, 1, 12)),
        # start_at in the future: first fire at or after it
        (utc(2025, 1, 1, 10), utc(2025, 1, 3, 11), None, utc(2025, 1, 3, 12)),
        # start_at exactly on a fire time: that fire counts (inclusive)
        (utc(2025, 1, 1, 10), utc(2025, 1, 3, 12), None, utc(2025, 1, 3, 12)),
        # start_at one microsecond after a fire time: that fire is excluded
        (utc(2025, 1, 1, 10), utc(2025, 1, 3, 12, 0, 0, 1), None, utc(2025, 1, 4, 12)),
        # start_at already passed: `after` decides
        (utc(2025, 1, 5, 13), utc(2025, 1, 3, 12), None, utc(2025, 1, 6, 12)),
        # end_at exactly on the fire: allowed (inclusive)
        (utc(2025, 1, 1, 10), None, utc(2025, 1, 1, 12), utc(2025, 1, 1, 12)),
        # end_at one microsecond before the fire: none
        (utc(2025, 1, 1, 10), None, utc(2025, 1, 1, 11, 59, 59, 999_999), None),
        # end_at already passed
        (utc(2025, 1, 1, 10), None, utc(2024, 12, 31), None),
        # both bounds: the window holds exactly one fire
        (utc(2025, 1, 1), utc(2025, 1, 2, 12), utc(2025, 1, 2, 12), utc(2025, 1, 2, 12)),
        # both bounds: the window holds none
        (utc(2025, 1, 1), utc(2025, 1, 2, 12, 0, 1), utc(2025, 1, 3, 11), None),
    ],
)
def test_next_cron_bounds(
    after: datetime, start_at: datetime | None, end_at: datetime | None, expected: datetime | None
) -> None:
    assert next_cron("0 12 * * *", "UTC", after, start_at=start_at, end_at=end_at) == expected


@pytest.mark.parametrize(
    ("expr", "tz", "after"),
    [
        ("* * */20 * 1L", "UTC", utc(2025, 1, 1)),  # parses, but no date ever matches
        ("* * */20 * 1L", NY, utc(2025, 1, 1)),
        ("0 0 0 */20 * 1L", "UTC", utc(2025, 1, 1)),
        ("0 0 1 1 *", "UTC", datetime.max.replace(tzinfo=UTC) - timedelta(days=1)),  # year 9999
    ],
)
def test_next_cron_returns_none_when_nothing_ever_fires(
    expr: str, tz: str, after: datetime
) -> None:
    assert next_cron(expr, tz, after) is None


@pytest.mark.parametrize(
    ("expr", "tz", "after", "message"),
    [
        ("0 0 30 2 *", "UTC", utc(2025, 1, 1), "never fires"),
        ("61 * * * *", "UTC", utc(2025, 1, 1), "minute"),
        ("* * * *", "UTC", utc(2025, 1, 1), "5 fields"),
        ("* * * * *", "Mars/Olympus_Mons", utc(2025, 1, 1), "unknown time zone"),
        ("* * * * *", "", utc(2025, 1, 1), "unknown time zone"),
        ("* * * * *", "UTC", datetime(2025, 1, 1), "timezone-aware"),
    ],
)
def test_next_cron_rejects_bad_input(expr: str, tz: str, after: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_cron(expr, tz, after)


def test_next_cron_rejects_naive_bounds() -> None:
    with pytest.raises(ValueError, match="start_at"):
        next_cron("* * * * *", "UTC", utc(2025, 1, 1), start_at=datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="end_at"):
        next_cron("* * * * *", "UTC", utc(2025, 1, 1), end_at=datetime(2025, 1, 2))


# --------------------------------------------------------------------------------------------
# next_cron: DST transitions, walked fire by fire over the transition night
# --------------------------------------------------------------------------------------------

# America/New_York 2025-03-09: 02:00 EST (07:00Z) jumps to 03:00 EDT; 02:00-02:59 never happen.
NY_SPRING = (utc(2025, 3, 9, 4), utc(2025, 3, 9, 10))  # 23:00 EST .. 06:00 EDT
# America/New_York 2025-11-02: 02:00 EDT (06:00Z) falls back to 01:00 EST; 01:00-01:59 twice.
NY_FALL = (utc(2025, 11, 2, 3), utc(2025, 11, 2, 9))  # 23:00 EDT .. 04:00 EST
# Europe/London 2025-03-30: 01:00 GMT (01:00Z) jumps to 02:00 BST; 01:00-01:59 never happen.
LONDON_SPRING = (utc(2025, 3, 29, 23), utc(2025, 3, 30, 4))
# Europe/London 2025-10-26: 02:00 BST (01:00Z) falls back to 01:00 GMT; 01:00-01:59 twice.
LONDON_FALL = (utc(2025, 10, 25, 22), utc(2025, 10, 26, 4))
# Australia/Lord_Howe 2025-10-05: 02:00 +10:30 (15:30Z on the 4th) jumps to 02:30 +11:00;
# 02:00-02:29 never happen (a half-hour shift).
LORD_HOWE_SPRING = (utc(2025, 10, 4, 13), utc(2025, 10, 4, 18))
# Australia/Lord_Howe 2025-04-06: 02:00 +11:00 (15:00Z on the 5th) falls back to 01:30 +10:30;
# 01:30-01:59 happen twice.
LORD_HOWE_FALL = (utc(2025, 4, 5, 13), utc(2025, 4, 5, 18))


@pytest.mark.parametrize(
    ("tz", "window", "expr", "expected"),
    [
        # ---- New York, spring forward --------------------------------------------------------
        # skipped time of day: fires once, at the jump (03:00 EDT = 07:00Z)
        (NY, NY_SPRING, "30 2 * * *", [utc(2025, 3, 9, 7)]),
        (NY, NY_SPRING, "0 2 * * *", [utc(2025, 3, 9, 7)]),
        # several skipped times collapse into that one fire
        (NY, NY_SPRING, "15,45 2 * * *", [utc(2025, 3, 9, 7)]),
        (NY, NY_SPRING, "*/30 2 * * *", [utc(2025, 3, 9, 7)]),
        # a matching time right after the jump is the same single fire
        (NY, NY_SPRING, "0 2,3 * * *", [utc(2025, 3, 9, 7)]),
        (NY, NY_SPRING, "30 2,3 * * *", [utc(2025, 3, 9, 7), utc(2025, 3, 9, 7, 30)]),
        # times around the gap are unaffected
        (NY, NY_SPRING, "30 1,3 * * *", [utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 7, 30)]),
        # 6-field time of day follows the same rule (cronsim alone would skip the whole day)
        (NY, NY_SPRING, "0 30 2 * * *", [utc(2025, 3, 9, 7)]),
        (NY, NY_SPRING, "20 30 2 * * *", [utc(2025, 3, 9, 7)]),  # at 03:00:00, not 03:00:20
        # periodic (hour field starts with *): skipped times just do not happen
        (
            NY,
            NY_SPRING,
            "30 * * * *",
            [utc(2025, 3, 9, h, 30) for h in (4, 5, 6, 7, 8, 9)],  # 01:30 EST -> 03:30 EDT
        ),
        (NY, NY_SPRING, "0 * * * *", [utc(2025, 3, 9, h) for h in (5, 6, 7, 8, 9, 10)]),
        # 6-field: the hour is the third field (`0 30 * * * *` is periodic, hourly at :30)
        (NY, NY_SPRING, "0 30 * * * *", [utc(2025, 3, 9, h, 30) for h in (4, 5, 6, 7, 8, 9)]),
        (NY, NY_SPRING, "0 */30 2 * * *", [utc(2025, 3, 9, 7)]),
        (
            NY,
            NY_SPRING,
            "0 */2 * * *",
            [utc(2025, 3, 9, 5), utc(2025, 3, 9, 8), utc(2025, 3, 9, 10)],
        ),
        (
            NY,
            (utc(2025, 3, 9, 6), utc(2025, 3, 9, 7, 30)),
            "*/15 * * * *",
            [utc(2025, 3, 9, 6, m) for m in (15, 30, 45)]
            + [utc(2025, 3, 9, 7, m) for m in (0, 15, 30)],
        ),
        (
            NY,
            (utc(2025, 3, 9, 6, 59, 30), utc(2025, 3, 9, 7, 0, 30)),
            "*/20 * * * * *",
            [utc(2025, 3, 9, 6, 59, 40), utc(2025, 3, 9, 7), utc(2025, 3, 9, 7, 0, 20)],
        ),
        # ---- New York, fall back -------------------------------------------------------------
        # repeated time of day: fires once, in the first pass (EDT)
        (NY, NY_FALL, "30 1 * * *", [utc(2025, 11, 2, 5, 30)]),
        (NY, NY_FALL, "0 1 * * *", [utc(2025, 11, 2, 5)]),
        (NY, NY_FALL, "*/30 1 * * *", [utc(2025, 11, 2, 5), utc(2025, 11, 2, 5, 30)]),
        (NY, NY_FALL, "0 30 1 * * *", [utc(2025, 11, 2, 5, 30)]),  # cronsim alone: twice
        (NY, NY_FALL, "30 0-3 * * *", [utc(2025, 11, 2, h, 30) for h in (4, 5, 7, 8)]),
        # periodic: the repeated hour fires in both passes, evenly spaced in real time
        (
            NY,
            (utc(2025, 11, 2, 4, 50), utc(2025, 11, 2, 7, 10)),
            "*/20 * * * *",
            [
                utc(2025, 11, 2, 5, 0),  # 01:00 EDT
                utc(2025, 11, 2, 5, 20),
                utc(2025, 11, 2, 5, 40),
                utc(2025, 11, 2, 6, 0),  # 01:00 EST
                utc(2025, 11, 2, 6, 20),
                utc(2025, 11, 2, 6, 40),
                utc(2025, 11, 2, 7, 0),  # 02:00 EST
            ],
        ),
        (NY, NY_FALL, "30 * * * *", [utc(2025, 11, 2, h, 30) for h in (3, 4, 5, 6, 7, 8)]),
        (
            NY,
            NY_FALL,
            "0 */2 * * *",
            [utc(2025, 11, 2, 4), utc(2025, 11, 2, 7), utc(2025, 11, 2, 9)],
        ),
        # ---- London, spring forward ----------------------------------------------------------
        (LONDON, LONDON_SPRING, "30 1 * * *", [utc(2025, 3, 30, 1)]),  # -> 02:00 BST
        (LONDON, LONDON_SPRING, "0 1 * * *", [utc(2025, 3, 30, 1)]),
        (LONDON, LONDON_SPRING, "0 2 * * *", [utc(2025, 3, 30, 1)]),  # 02:00 BST exists
        (LONDON, LONDON_SPRING, "0 30 1 * * *", [utc(2025, 3, 30, 1)]),
        (
            LONDON,
            (utc(2025, 3, 30), utc(2025, 3, 30, 2)),
            "*/30 * * * *",
            [
                utc(2025, 3, 30, 0, 30),
                utc(2025, 3, 30, 1),
                utc(2025, 3, 30, 1, 30),
                utc(2025, 3, 30, 2),
            ],
        ),
        # ---- London, fall back ---------------------------------------------------------------
        (LONDON, LONDON_FALL, "30 1 * * *", [utc(2025, 10, 26, 0, 30)]),  # 01:30 BST only
        (
            LONDON,
            LONDON_FALL,
            "15,45 1 * * *",
            [utc(2025, 10, 26, 0, 15), utc(2025, 10, 26, 0, 45)],
        ),
        (LONDON, LONDON_FALL, "0 30 1 * * *", [utc(2025, 10, 26, 0, 30)]),
        (
            LONDON,
            (utc(2025, 10, 25, 23, 45), utc(2025, 10, 26, 2, 15)),
            "*/30 * * * *",
            [
                utc(2025, 10, 26, 0, 0),  # 01:00 BST
                utc(2025, 10, 26, 0, 30),  # 01:30 BST
                utc(2025, 10, 26, 1, 0),  # 01:00 GMT
                utc(2025, 10, 26, 1, 30),  # 01:30 GMT
                utc(2025, 10, 26, 2, 0),  # 02:00 GMT
            ],
        ),
        # ---- Lord Howe, spring forward by 30 minutes -----------------------------------------
        (LORD_HOWE, LORD_HOWE_SPRING, "15 2 * * *", [utc(2025, 10, 4, 15, 30)]),  # 02:30 +11
        (LORD_HOWE, LORD_HOWE_SPRING, "0 2 * * *", [utc(2025, 10, 4, 15, 30)]),
        (LORD_HOWE, LORD_HOWE_SPRING, "45 2 * * *", [utc(2025, 10, 4, 15, 45)]),  # exists
        (LORD_HOWE, LORD_HOWE_SPRING, "0,15 2 * * *", [utc(2025, 10, 4, 15, 30)]),
        (LORD_HOWE, LORD_HOWE_SPRING, "0 15 2 * * *", [utc(2025, 10, 4, 15, 30)]),
        (
            LORD_HOWE,
            LORD_HOWE_SPRING,
            "0 * * * *",
            [
                utc(2025, 10, 4, 13, 30),  # 00:00 +10:30
                utc(2025, 10, 4, 14, 30),  # 01:00 +10:30
                utc(2025, 10, 4, 16, 0),  # 03:00 +11 (02:00 never happened)
                utc(2025, 10, 4, 17, 0),
                utc(2025, 10, 4, 18, 0),
            ],
        ),
        (
            LORD_HOWE,
            (utc(2025, 10, 4, 15), utc(2025, 10, 4, 15, 45)),
            "*/15 * * * *",
            [utc(2025, 10, 4, 15, 15), utc(2025, 10, 4, 15, 30), utc(2025, 10, 4, 15, 45)],
        ),
        # ---- Lord Howe, fall back by 30 minutes ----------------------------------------------
        (LORD_HOWE, LORD_HOWE_FALL, "45 1 * * *", [utc(2025, 4, 5, 14, 45)]),  # 01:45 +11 only
        (LORD_HOWE, LORD_HOWE_FALL, "30 1 * * *", [utc(2025, 4, 5, 14, 30)]),  # 01:30 +11 only
        (LORD_HOWE, LORD_HOWE_FALL, "15 1 * * *", [utc(2025, 4, 5, 14, 15)]),  # not repeated
        (LORD_HOWE, LORD_HOWE_FALL, "0 2 * * *", [utc(2025, 4, 5, 15, 30)]),  # 02:00 +10:30
        (
            LORD_HOWE,
            (utc(2025, 4, 5, 14, 15), utc(2025, 4, 5, 15, 30)),
            "*/15 * * * *",
            [
                utc(2025, 4, 5, 14, 30),  # 01:30 +11
                utc(2025, 4, 5, 14, 45),  # 01:45 +11
                utc(2025, 4, 5, 15, 0),  # 01:30 +10:30
                utc(2025, 4, 5, 15, 15),  # 01:45 +10:30
                utc(2025, 4, 5, 15, 30),  # 02:00 +10:30
            ],
        ),
        # ---- Santiago springs forward at midnight: 00:00 -04 (04:00Z) becomes 01:00 -03 ---------
        (
            "America/Santiago",
            (utc(2025, 9, 6), utc(2025, 9, 8, 5)),
            "0 0 * * *",
            [utc(2025, 9, 6, 4), utc(2025, 9, 7, 4), utc(2025, 9, 8, 3)],
        ),
        # ---- Kolkata has no DST: the same nights are ordinary ---------------------------------
        (KOLKATA, NY_SPRING, "30 12 * * *", [utc(2025, 3, 9, 7)]),
        (KOLKATA, NY_FALL, "0 * * * *", [utc(2025, 11, 2, h, 30) for h in range(3, 9)]),
    ],
)
def test_dst_transition_night(
    tz: str, window: tuple[datetime, datetime], expr: str, expected: list[datetime]
) -> None:
    assert cron_error(expr) is None
    assert fires(expr, tz, *window) == expected


@pytest.mark.parametrize(
    ("expr", "tz", "after", "start_at", "expected"),
    [
        # `after` inside the second pass (01:45 EST): a time of day that fired in the first pass
        # is done for the day, even though 01:50 "comes again" on the wall clock
        ("50 1 * * *", NY, local(NY, 2025, 11, 2, 1, 45, fold=1), None, utc(2025, 11, 3, 6, 50)),
        ("30 1 * * *", NY, local(NY, 2025, 11, 2, 1, 15, fold=1), None, utc(2025, 11, 3, 6, 30)),
        # ... but the times right after the repeated hour are not skipped
        ("0 2 * * *", NY, local(NY, 2025, 11, 2, 1, 45, fold=1), None, utc(2025, 11, 2, 7)),
        ("5 2 * * *", NY, local(NY, 2025, 11, 2, 1, 45, fold=1), None, utc(2025, 11, 2, 7, 5)),
        ("50 1,2 * * *", NY, local(NY, 2025, 11, 2, 1, 45, fold=1), None, utc(2025, 11, 2, 7, 50)),
        ("*/20 1-2 * * *", NY, local(NY, 2025, 11, 2, 1, 5, fold=1), None, utc(2025, 11, 2, 7)),
        # ... while a periodic one continues in the second pass
        ("50 * * * *", NY, local(NY, 2025, 11, 2, 1, 45, fold=1), None, utc(2025, 11, 2, 6, 50)),
        # `after` inside the first pass: a periodic expression's next fire may be a wall time
        # that already passed once (01:00 EST after 01:30 EDT)
        ("0 * * * *", NY, local(NY, 2025, 11, 2, 1, 30), None, utc(2025, 11, 2, 6)),
        ("0 * * * *", NY, local(NY, 2025, 11, 2, 1, 30, fold=1), None, utc(2025, 11, 2, 7)),
        ("*/10 * * * * *", NY, local(NY, 2025, 11, 2, 1, 59, 55), None, utc(2025, 11, 2, 6)),
        # the daily job itself, across the transition days
        ("30 2 * * *", NY, utc(2025, 3, 8, 12), None, utc(2025, 3, 9, 7)),
        ("30 2 * * *", NY, utc(2025, 3, 9, 7), None, utc(2025, 3, 10, 6, 30)),
        ("30 1 * * *", NY, utc(2025, 11, 2, 5, 30), None, utc(2025, 11, 3, 6, 30)),
        # start_at inside the repeated hour's second pass excludes the first-pass fire
        ("30 1 * * *", NY, utc(2025, 11, 1), utc(2025, 11, 2, 6), utc(2025, 11, 3, 6, 30)),
        # start_at inside the spring-forward gap's aftermath: the collapsed fire is at the jump
        ("30 2 * * *", NY, utc(2025, 3, 1), utc(2025, 3, 9, 7), utc(2025, 3, 9, 7)),
        ("30 2 * * *", NY, utc(2025, 3, 1), utc(2025, 3, 9, 7, 0, 1), utc(2025, 3, 10, 6, 30)),
    ],
)
def test_next_cron_around_dst(
    expr: str, tz: str, after: datetime, start_at: datetime | None, expected: datetime
) -> None:
    assert next_cron(expr, tz, after, start_at=start_at) == expected


@pytest.mark.parametrize(
    "day",
    [utc(2025, 1, 10), utc(2025, 3, 9), utc(2025, 3, 30), utc(2025, 6, 1), utc(2025, 11, 2)],
)
def test_kolkata_has_a_fixed_offset(day: datetime) -> None:
    # 02:30 IST is always 21:00 UTC on the previous day, whatever the rest of the world does
    assert next_cron("30 2 * * *", KOLKATA, day - timedelta(days=1)) == day - timedelta(hours=3)


# --------------------------------------------------------------------------------------------
# next_interval
# --------------------------------------------------------------------------------------------

ANCHOR = utc(2025, 1, 1, 10, 0, 7)


@pytest.mark.parametrize(
    ("every", "anchor", "after", "end_at", "expected"),
    [
        # future anchor: the anchor itself
        (timedelta(minutes=5), ANCHOR, utc(2025, 1, 1, 9), None, ANCHOR),
        (timedelta(minutes=5), ANCHOR, ANCHOR - timedelta(microseconds=1), None, ANCHOR),
        # anchor == after (created now): one interval later
        (timedelta(minutes=5), ANCHOR, ANCHOR, None, ANCHOR + timedelta(minutes=5)),
        # past anchor sets the phase (:07 seconds)
        (
            timedelta(minutes=1),
            ANCHOR,
            utc(2025, 1, 1, 12, 34, 56),
            None,
            utc(2025, 1, 1, 12, 35, 7),
        ),
        (timedelta(hours=1), ANCHOR, utc(2025, 1, 3, 0, 30), None, utc(2025, 1, 3, 1, 0, 7)),
        # exactly on an occurrence: the next one
        (
            timedelta(minutes=1),
            ANCHOR,
            utc(2025, 1, 1, 12, 35, 7),
            None,
            utc(2025, 1, 1, 12, 36, 7),
        ),
        # sub-second periods and microsecond anchors
        (
            timedelta(milliseconds=250),
            utc(2025, 1, 1, 0, 0, 0, 123_456),
            utc(2025, 1, 1, 0, 0, 1),
            None,
            utc(2025, 1, 1, 0, 0, 1, 123_456),
        ),
        (
            timedelta(microseconds=3),
            utc(2025, 1, 1, 0, 0, 0, 1),
            utc(2025, 1, 1, 0, 0, 0, 10),
            None,
            utc(2025, 1, 1, 0, 0, 0, 13),
        ),
        # end_at inclusive: exactly on the occurrence is allowed, a microsecond earlier is not
        (
            timedelta(minutes=5),
            ANCHOR,
            ANCHOR,
            ANCHOR + timedelta(minutes=5),
            ANCHOR + timedelta(minutes=5),
        ),
        (
            timedelta(minutes=5),
            ANCHOR,
            ANCHOR,
            ANCHOR + timedelta(minutes=5, microseconds=-1),
            None,
        ),
        (timedelta(minutes=5), ANCHOR, utc(2025, 1, 1, 9), ANCHOR, ANCHOR),
        (timedelta(minutes=5), ANCHOR, utc(2025, 1, 1, 9), utc(2025, 1, 1, 9, 30), None),
        # elapsed time, not wall time: 1 h after 01:30 EST on the spring-forward day is 03:30 EDT
        (
            timedelta(hours=1),
            local(NY, 2025, 3, 9, 1, 30),
            local(NY, 2025, 3, 9, 1, 30),
            None,
            utc(2025, 3, 9, 7, 30),
        ),
        # ... and a day after 12:00 EST is 13:00 EDT
        (
            timedelta(days=1),
            local(NY, 2025, 3, 8, 12),
            local(NY, 2025, 3, 8, 12),
            None,
            utc(2025, 3, 9, 17),
        ),
        # arguments in different zones are compared as instants
        (
            timedelta(minutes=30),
            local(KOLKATA, 2025, 1, 1, 15, 30),  # 10:00Z
            local(NY, 2025, 1, 1, 5, 10),  # 10:10Z
            None,
            utc(2025, 1, 1, 10, 30),
        ),
        # far from the anchor, still exact to the microsecond
        (
            timedelta(microseconds=7),
            utc(1970, 1, 1),
            utc(2025, 1, 1, 0, 0, 0, 3),
            None,
            utc(2025, 1, 1, 0, 0, 0, 6),
        ),
        (
            timedelta(seconds=1.1),
            utc(2000, 1, 1),
            utc(2000, 1, 1) + 123_456_789 * timedelta(seconds=1.1),
            None,
            utc(2000, 1, 1) + 123_456_790 * timedelta(seconds=1.1),
        ),
        # ~3000 years of 3 µs steps: beyond float precision, still exact
        (
            timedelta(microseconds=3),
            utc(1, 1, 1),
            utc(1, 1, 1) + timedelta(microseconds=3 * 31_000_000_000_000_000 - 1),
            None,
            utc(1, 1, 1) + timedelta(microseconds=3 * 31_000_000_000_000_000),
        ),
        # no representable next occurrence
        (
            timedelta(days=365),
            ANCHOR,
            datetime.max.replace(tzinfo=UTC) - timedelta(days=1),
            None,
            None,
        ),
    ],
)
def test_next_interval(
    every: timedelta,
    anchor: datetime,
    after: datetime,
    end_at: datetime | None,
    expected: datetime | None,
) -> None:
    result = next_interval(every, anchor, after, end_at=end_at)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("every", "anchor"),
    [
        (timedelta(seconds=1.1), utc(2025, 1, 1)),
        (timedelta(milliseconds=333), utc(2025, 1, 1, 0, 0, 0, 999_999)),
        (timedelta(microseconds=1_000_001), local(NY, 2025, 3, 9, 1, 59, 50)),
    ],
)
def test_next_interval_never_drifts(every: timedelta, anchor: datetime) -> None:
    step = every // timedelta(microseconds=1)
    base = anchor.astimezone(UTC)  # aware arithmetic in a DST zone would add wall-clock time
    t = anchor
    for k in range(1, 1001):
        following = next_interval(every, anchor, t)
        assert following == base + timedelta(microseconds=k * step)
        assert following is not None
        t = following
    assert t == base + 1000 * every


def test_next_interval_1_1s_is_exact_after_1000_steps() -> None:
    anchor = utc(2025, 1, 1)
    t = anchor
    for _ in range(1000):
        result = next_interval(timedelta(seconds=1.1), anchor, t)
        assert result is not None
        t = result
    assert t == utc(2025, 1, 1, 0, 18, 20)  # exactly 1100 s, not 1100.000000001 or 1099.999


@pytest.mark.parametrize(
    ("every", "anchor", "after", "message"),
    [
        (timedelta(0), ANCHOR, ANCHOR, "positive"),
        (timedelta(seconds=-5), ANCHOR, ANCHOR, "positive"),
        (timedelta(seconds=5), datetime(2025, 1, 1), ANCHOR, "anchor"),
        (timedelta(seconds=5), ANCHOR, datetime(2025, 1, 1), "after"),
    ],
)
def test_next_interval_rejects_bad_input(
    every: timedelta, anchor: datetime, after: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        next_interval(every, anchor, after)


# --------------------------------------------------------------------------------------------
# next_once
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_at", "after", "expected"),
    [
        (utc(2025, 1, 1, 12), utc(2025, 1, 1, 11), utc(2025, 1, 1, 12)),
        (utc(2025, 1, 1, 12), utc(2025, 1, 1, 11, 59, 59, 999_999), utc(2025, 1, 1, 12)),
        (utc(2025, 1, 1, 12), utc(2025, 1, 1, 12), None),  # already due at `after`: not again
        (utc(2025, 1, 1, 12), utc(2025, 1, 1, 13), None),
        (local(KOLKATA, 2025, 1, 1, 17, 30), utc(2025, 1, 1, 11), utc(2025, 1, 1, 12)),
        (local(KOLKATA, 2025, 1, 1, 17, 30), local(NY, 2025, 1, 1, 7), None),  # both 12:00Z
        # the second 01:30 in New York on fall-back day is a later instant than the first
        (
            local(NY, 2025, 11, 2, 1, 30, fold=1),
            local(NY, 2025, 11, 2, 1, 50),
            utc(2025, 11, 2, 6, 30),
        ),
    ],
)
def test_next_once(run_at: datetime, after: datetime, expected: datetime | None) -> None:
    result = next_once(run_at, after)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


def test_next_once_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="run_at"):
        next_once(datetime(2025, 1, 1), utc(2025, 1, 1))
    with pytest.raises(ValueError, match="after"):
        next_once(utc(2025, 1, 1), datetime(2025, 1, 1))
