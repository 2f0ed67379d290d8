"""parse_duration / format_duration: the one duration grammar (`250ms`, `10s`, `5m`, `2h`, `1d`,
or a plain number of seconds) shared by settings and trigger configs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventtrigger.domain.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("10s", timedelta(seconds=10)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("0s", timedelta(0)),
        ("0", timedelta(0)),
    ],
)
def test_each_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", timedelta(seconds=30)),
        (30, timedelta(seconds=30)),
        (0, timedelta(0)),
        (1.5, timedelta(seconds=1.5)),
        (0.25, timedelta(milliseconds=250)),
    ],
)
def test_plain_numbers_are_seconds(value: str | int | float, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5s", timedelta(milliseconds=1500)),
        ("0.5m", timedelta(seconds=30)),
        ("1.5h", timedelta(minutes=90)),
        ("0.5d", timedelta(hours=12)),
        ("2.5ms", timedelta(microseconds=2500)),
        ("1.25", timedelta(milliseconds=1250)),
    ],
)
def test_decimals(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  10s", timedelta(seconds=10)),
        ("10s  ", timedelta(seconds=10)),
        ("10 s", timedelta(seconds=10)),
        ("\t5m\n", timedelta(minutes=5)),
        (" 250 ms ", timedelta(milliseconds=250)),
        (" 42 ", timedelta(seconds=42)),
    ],
)
def test_surrounding_and_inner_whitespace_is_ignored(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "s",
        "ms",
        "abc",
        "10x",
        "10 sec",
        "10seconds",
        "10S",  # units are lower case
        "1h30m",  # no compound durations
        ".5s",
        "5.s",
        "1e3",
        "1e3s",
        "0x10",
        "10s10",
        "P1D",  # no ISO 8601
        "10,5s",
    ],
)
def test_garbage_is_rejected(text: str) -> None:
    with pytest.raises(DurationError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["-1s", "-5", "- 5s"])
def test_negative_text_is_rejected(value: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_negative_numbers_are_rejected(value: float) -> None:
    with pytest.raises(DurationError, match="negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers_of_seconds(value: bool) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


def test_duration_error_is_a_value_error() -> None:
    # Callers (settings, trigger validation) rely on catching it as ValueError too.
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    "value",
    ["999999999999d", "99999999999999999999s", 1e300, float("inf"), float("nan")],
)
def test_out_of_range_values_raise_duration_error(value: str | float) -> None:
    # Regex-valid or JSON-valid but too big for a timedelta: must still be a readable
    # DurationError (trigger validation only catches DurationError; anything else is a 500).
    with pytest.raises(DurationError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(days=1), "1d"),
        (timedelta(days=3), "3d"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=10), "10s"),
        (timedelta(seconds=61), "61s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(microseconds=2500), "0.0025s"),
    ],
)
def test_format_duration_shortest_exact_spelling(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        timedelta(0),
        timedelta(days=1),
        timedelta(hours=5),
        timedelta(minutes=7),
        timedelta(seconds=59),
        timedelta(milliseconds=100),
        timedelta(milliseconds=1001),
        timedelta(days=1, microseconds=500),
        timedelta(microseconds=2500),
        timedelta(microseconds=100),
        timedelta(microseconds=50),
        timedelta(microseconds=1),
    ],
    ids=str,
)
def test_format_duration_round_trips(value: timedelta) -> None:
    text = format_duration(value)
    assert parse_duration(text) == value, text


@pytest.mark.parametrize("text", ["250ms", "10s", "5m", "2h", "1d", "90m", "1500ms"])
def test_parse_then_format_is_identity_for_canonical_text(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
