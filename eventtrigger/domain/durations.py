"""Durations as users write them: `250ms`, `10s`, `5m`, `2h`, `1d`, or plain seconds.

One parser serves the settings, trigger configs (`run_in`, `every`, `timeout`, retry
delays) and anything else that takes a duration, so the grammar is the same everywhere.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


class DurationError(ValueError):
    """The text is not a duration we understand."""


# The worker parses a job's timeout and retry delays on every attempt, and users write a
# handful of distinct values: remembering them saved ~4% of a busy worker (py-spy, S4).
# `typed`, so True is never taken for a cached 1.
@functools.lru_cache(maxsize=1024, typed=True)
def parse_duration(text: str | int | float) -> timedelta:
    """Parse `text` into a timedelta; raise DurationError with a readable reason."""
    if isinstance(text, bool):
        raise DurationError("expected a duration such as '10s', '5m' or '2h'")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise DurationError("a duration must be a finite number")
        if text < 0:
            raise DurationError("a duration cannot be negative")
        return _seconds(float(text))
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise DurationError(
            f"{text!r} is not a duration; write e.g. '250ms', '10s', '5m', '2h', '1d' or seconds"
        )
    number, unit = match.groups()
    return _seconds(float(number) * _UNITS[unit or "s"])


def _seconds(value: float) -> timedelta:
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise DurationError("the duration is too long") from None


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of `value` in the same grammar (for responses and docs)."""
    micros = value // timedelta(microseconds=1)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if micros % (seconds * 1_000_000) == 0:
            return f"{micros // (seconds * 1_000_000)}{unit}"
    if micros % 1000 == 0:
        return f"{micros // 1000}ms"
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}".rstrip("0") + "s"
