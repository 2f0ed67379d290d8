"""All retry maths (pure; `now` and the jitter draw are passed in): delivery outcomes,
the backoff, Retry-After, and the longest a policy's attempts can take.

Attempt n+1 waits min(max_delay, initial_delay * 2^(n-1)) plus up to 20% jitter (never
less). A Retry-After answer (seconds or an HTTP date) raises that wait, up to one hour,
but never past the event's active window: retention moves only finished events, and a
trigger's policy was validated to fit that window, so a server's Retry-After must not
stretch it. Network errors, timeouts, 408, 425, 429 and 5xx are retried; 2xx is
success; anything else (3xx included: redirects are not followed) fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

JITTER = 0.2  # retries wait up to 20% longer than the base delay, never less
RETRY_AFTER_CAP = timedelta(hours=1)
RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Decision:
    status: str  # success | retrying | failure
    next_attempt_at: datetime | None


def retry_delay(attempt: int, initial: timedelta, maximum: timedelta) -> timedelta:
    """Base wait after failed attempt `attempt` (1-based), before jitter."""
    base: timedelta = initial * (2 ** min(attempt - 1, 40))
    return min(maximum, base)


def retry_span(
    attempts: int, initial: timedelta, maximum: timedelta, timeout: timedelta
) -> timedelta:
    """The longest all attempts can take: every timeout plus every wait at full jitter."""
    waits = sum((retry_delay(n, initial, maximum) for n in range(1, attempts)), timedelta(0))
    return waits * (1 + JITTER) + timeout * attempts


def is_retryable(status_code: int | None) -> bool:
    """None means no answer at all (network error, timeout): always worth another try."""
    return status_code is None or status_code in RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        wait = timedelta(seconds=min(int(value[:12]), int(RETRY_AFTER_CAP.total_seconds())))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        wait = when - now
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


def decide(
    *,
    attempt: int,
    max_attempts: int,
    status_code: int | None,
    retry_after: timedelta | None,
    initial_delay: timedelta,
    max_delay: timedelta,
    now: datetime,
    jitter_draw: float,
    latest: datetime | None = None,
) -> Decision:
    """What happens after attempt number `attempt` (1-based) got `status_code`.

    `latest` is when the event leaves the active window (its fired time plus the window):
    a Retry-After may raise the wait up to then, not beyond. The backoff itself is never
    shortened (validation made it fit).
    """
    if status_code is not None and 200 <= status_code < 300:
        return Decision("success", None)
    if not is_retryable(status_code) or attempt >= max_attempts:
        return Decision("failure", None)
    wait = retry_delay(attempt, initial_delay, max_delay) * (1 + JITTER * jitter_draw)
    if retry_after is not None and retry_after > wait:
        room = None if latest is None else latest - now
        wait = retry_after if room is None else max(wait, min(retry_after, room))
    return Decision("retrying", now + wait)
