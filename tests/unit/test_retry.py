"""Retry policy: outcome classes, exponential backoff with jitter, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.domain.retry import (
    decide,
    is_retryable,
    parse_retry_after,
    retry_delay,
    retry_span,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def _decide(
    attempt: int,
    code: int | None,
    *,
    draw: float = 0.0,
    retry_after=None,
    max_attempts=5,
    latest=None,
):  # type: ignore[no-untyped-def]
    return decide(
        attempt=attempt,
        max_attempts=max_attempts,
        status_code=code,
        retry_after=retry_after,
        initial_delay=2 * S,
        max_delay=300 * S,
        now=NOW,
        jitter_draw=draw,
        latest=latest,
    )


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_is_success(code: int) -> None:
    assert _decide(1, code).status == "success"
    assert _decide(1, code).next_attempt_at is None


@pytest.mark.parametrize("code", [None, 408, 425, 429, 500, 502, 503, 504, 599])
def test_network_errors_timeouts_408_425_429_and_5xx_are_retried(code: int | None) -> None:
    assert is_retryable(code)
    assert _decide(1, code).status == "retrying"


@pytest.mark.parametrize("code", [300, 301, 302, 304, 307, 400, 401, 403, 404, 409, 410, 422])
def test_3xx_and_other_4xx_fail_at_once(code: int) -> None:
    assert not is_retryable(code)
    assert _decide(1, code).status == "failure"


@pytest.mark.parametrize(
    ("attempt", "wait"),
    [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (8, 256), (9, 300), (15, 300)],
)
def test_backoff_doubles_from_initial_delay_up_to_max_delay(attempt: int, wait: int) -> None:
    outcome = _decide(attempt, 503, max_attempts=20)
    assert outcome.next_attempt_at == NOW + wait * S


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_adds_up_to_20_percent_and_never_less(draw: float) -> None:
    outcome = _decide(3, 503, draw=draw)
    assert outcome.next_attempt_at is not None
    wait = outcome.next_attempt_at - NOW
    assert 8 * S <= wait <= 8 * S * 1.2
    assert wait == 8 * S * (1 + 0.2 * draw)


def test_the_last_attempt_fails_instead_of_retrying() -> None:
    assert _decide(5, 503, max_attempts=5).status == "failure"
    assert _decide(4, 503, max_attempts=5).status == "retrying"
    assert _decide(1, 503, max_attempts=1).status == "failure"


def test_retry_after_raises_the_wait_but_never_lowers_it() -> None:
    assert _decide(1, 429, retry_after=60 * S).next_attempt_at == NOW + 60 * S
    assert _decide(3, 429, retry_after=1 * S).next_attempt_at == NOW + 8 * S


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 5 ", timedelta(seconds=5)),
        ("0", timedelta(0)),
        ("99999", timedelta(hours=1)),  # capped at one hour
        ("Thu, 01 Jan 2026 12:00:30 GMT", timedelta(seconds=30)),
        ("Thu, 01 Jan 2026 11:00:00 GMT", timedelta(0)),  # in the past
        ("Fri, 02 Jan 2026 12:00:00 GMT", timedelta(hours=1)),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(
    header: str | None, expected: timedelta | None
) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize("header", ["99999999999999999999", "\u00b2", "\u0661\u0662", "1e9"])
def test_odd_retry_after_values_never_raise(header: str) -> None:
    wait = parse_retry_after(header, NOW)
    assert wait is None or timedelta(0) <= wait <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (1, timedelta(seconds=10)),  # one attempt: just its timeout
        (2, timedelta(seconds=2 * 1.2 + 20)),
        (5, timedelta(seconds=(2 + 4 + 8 + 16) * 1.2 + 50)),
        # 2,4,...,256 then capped at 300 for attempts 9..19
        (20, timedelta(seconds=(510 + 11 * 300) * 1.2 + 200)),
    ],
)
def test_retry_span(attempts: int, expected: timedelta) -> None:
    span = retry_span(attempts, timedelta(seconds=2), timedelta(minutes=5), timedelta(seconds=10))
    assert span == expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (19, 300), (1000, 300)],
)
def test_retry_delay_doubles_up_to_max(attempt: int, expected: int) -> None:
    delay = retry_delay(attempt, timedelta(seconds=2), timedelta(minutes=5))
    assert delay == timedelta(seconds=expected)


def test_retry_after_raises_the_wait_only_up_to_the_end_of_the_active_window() -> None:
    latest = NOW + 10 * 60 * S  # the event leaves the active window in 10 minutes
    capped = _decide(1, 503, retry_after=3600 * S, latest=latest)
    assert capped.status == "retrying" and capped.next_attempt_at == latest
    inside = _decide(1, 503, retry_after=60 * S, latest=latest)
    assert inside.next_attempt_at == NOW + 60 * S


def test_the_window_never_shortens_the_backoff_itself() -> None:
    # Already past the window (a late worker): the validated backoff stands as it is.
    late = _decide(3, 503, retry_after=3600 * S, latest=NOW - S)
    assert late.next_attempt_at == NOW + 8 * S
