"""`--wait`: follow a fired event until its delivery succeeded or failed for good, then
report the outcome with its attempts.

Polling is polite: 0.2 s between looks at first, growing to 2 s, since a delivery with
retries can take minutes and many CLIs may be waiting at once.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from eventtrigger_client import render
from eventtrigger_client.api import ApiClient, ApiError, Unreachable
from eventtrigger_client.common import (
    OK,
    REFUSED,
    SERVER,
    TriggerNames,
    now,
    quote_id,
    show,
    stderr,
)

FINAL = ("success", "failure")
DEFAULT_TIMEOUT = 120.0
# A 404 this soon after the 202 means "not stored yet" (the answer may come before the
# event's row is readable); later it means the event is gone, or was never there.
NOT_YET_SECONDS = 5.0


def delays(first: float = 0.2, factor: float = 1.5, most: float = 2.0) -> Iterator[float]:
    """0.2, 0.3, 0.45, ... seconds, then 2 s for ever."""
    delay = first
    while True:
        yield delay
        delay = min(most, delay * factor)


def wait_for_outcome(
    client: ApiClient,
    event_id: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The event once final (`True`), or as last seen when `timeout` ran out (`False`).

    Moments the server cannot answer are waited through, up to `timeout`: a 404 in the
    first NOT_YET_SECONDS (the 202 can come before the event is readable), a 5xx, a 429
    or no answer at all (a restart). Other errors, and those once `timeout` ran out, are
    raised as they are.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    started = clock()
    deadline = started + timeout
    pauses = delays()
    event: dict[str, Any] = {"id": event_id, "status": "unknown"}
    while True:
        try:
            event = client.request("GET", f"/events/{quote_id(event_id)}")
        except ApiError as exc:
            if not _passing(exc.status, clock() - started) or clock() >= deadline:
                raise
        except Unreachable:
            if clock() >= deadline:
                raise
        else:
            if event.get("status") in FINAL:
                return event, True
        left = deadline - clock()
        if left <= 0:
            return event, False
        sleep(min(next(pauses), left))


def _passing(status: int, waited: float) -> bool:
    """Is an error answer after `waited` seconds one to wait through?"""
    if status == 404:
        return waited < NOT_YET_SECONDS
    return status >= 500 or status == 429


def wait_timeout(text: str) -> float:
    """--wait-timeout's value: a finite number of seconds above 0 (argparse: exit 2)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds and finite, not {text!r}")
    return seconds


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the delivery's outcome and print it with its attempts: exit 0 when "
        "delivered, 1 when it failed for good, 3 when --wait-timeout ran out",
    )
    parser.add_argument(
        "--wait-timeout",
        type=wait_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long --wait waits ({DEFAULT_TIMEOUT:g})",
    )


def report(args: argparse.Namespace, client: ApiClient, event_id: str, out: TextIO) -> int:
    """Wait for `event_id`'s outcome and print it; the exit code it means."""
    event, final = wait_for_outcome(client, event_id, args.wait_timeout)
    if not final:
        print(
            f"eventtrigger: gave up waiting after {args.wait_timeout:g}s: event {event_id} is "
            f"still {render.printable(str(event.get('status')))}; follow it: "
            f"eventtrigger events get {event_id}",
            file=stderr(args),
        )
        return SERVER
    page = client.request("GET", f"/events/{quote_id(event_id)}/attempts")
    attempts: list[dict[str, Any]] = (page or {}).get("items") or []
    name = TriggerNames(client).name(event.get("trigger_id"))
    show(
        args,
        {"event": event, "attempts": attempts},
        out,
        table=lambda: render.outcome(event, attempts, name, now(), None),
        ids=lambda: [event_id],
    )
    return OK if event.get("status") == "success" else REFUSED
