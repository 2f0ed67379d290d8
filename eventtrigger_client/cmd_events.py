"""`events list|get|attempts|replay|tail`, `stats` and `aggregate`: what was fired and
delivered, over the API."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from eventtrigger_client import common, output, render, sse
from eventtrigger_client.api import ApiClient, ApiError, Unreachable
from eventtrigger_client.common import OK, UsageError, quote_id, show

STATUSES = ("pending", "retrying", "success", "failure")
SOURCES = ("api", "scheduled", "manual-test", "replay")
POLL_SECONDS = 2.0  # `tail` against a server without the event stream
RECONNECT_SECONDS = 1.0  # the first pause before reopening a lost stream ...
MAX_RECONNECT_SECONDS = 5.0  # ... growing to this while the server stays away
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited out in full
RETRIED_STATUSES = (429, 503)  # a full or stopping server: the stream is reopened later
# The server's comments worth telling the user about (the rest are keep-alives).
SERVER_NOTICES = ("dropped", "the server is stopping", "skipped", "the key of this stream")
FOLLOW = "eventtrigger events get "
COUNT_CAP = 10_000  # events a bulk replay's count reads at most (the API replays 1000)


def add(sub: common.Subparsers, shared: argparse.ArgumentParser) -> None:
    """Add the `events` group, `stats` and `aggregate` to the program's subcommands."""
    events = common.group(sub, "events", "list and inspect event logs, replay events", shared)

    def leaf(
        name: str, help_text: str, action: common.Action, takes_id: str = ""
    ) -> argparse.ArgumentParser:
        return common.leaf(events, name, help_text, action, shared, takes_id)

    listing = leaf("list", "list events, newest first by fired time", _list)
    listing.add_argument("--view", choices=("active", "archived"), help="(default: active)")
    _filters(listing)
    listing.add_argument(
        "--test-runs",
        choices=("true", "false"),
        help="only test runs (true) or only real firings (false)",
    )
    listing.add_argument("--since", help="fired at or after this RFC 3339 time")
    listing.add_argument("--until", help="fired before this RFC 3339 time")
    common.paging(listing)
    leaf(
        "get",
        "show one event and its delivery attempts (-o json: the API's event plus "
        "`delivery_attempts`, each with the request sent and the response headers)",
        _get,
        "event",
    )
    leaf("attempts", "list an event's delivery attempts, oldest first", _attempts, "event")
    replay = leaf(
        "replay",
        "deliver an event again as a new event; or, with --bulk, every event matching the "
        "filters (oldest first)",
        _replay,
    )
    replay.add_argument("id", nargs="?", help="the event id (not with --bulk)")
    replay.add_argument("--bulk", action="store_true", help="replay the events the filters match")
    bulk = replay.add_argument_group("--bulk filters (at least one)")
    bulk.add_argument("--trigger-id", help="only this trigger's events")
    bulk.add_argument("--status", choices=STATUSES, help="only events with this status")
    bulk.add_argument("--since", help="fired at or after this RFC 3339 time")
    bulk.add_argument("--until", help="fired before this RFC 3339 time")
    bulk.add_argument("--limit", type=int, help="replay at most this many, 1-1000 (100)")
    bulk.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; replay nothing"
    )
    bulk.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    tail = leaf(
        "tail",
        "follow new events as they happen (Ctrl-C stops); -o json prints one object a line",
        _tail,
    )
    tail.description = (
        f"{tail.description}\n\nA lost stream (a server restart, a dropped connection) is "
        "opened again, saying so on stderr;\nbut events that changed while it was gone are "
        "not replayed: catch up with\n  eventtrigger events list --since TIME"
    )
    _filters(tail)

    stats = common.leaf(
        sub, "stats", "the platform's figures (as /metrics and the console show)", _stats, shared
    )
    stats.add_argument(
        "--series",
        choices=("1h", "48h"),
        help="instead: firings by outcome and p50/p99 timings per time bucket",
    )
    stats.add_argument("--trigger-id", help="with --series: only this trigger")
    aggregate = common.leaf(
        sub,
        "aggregate",
        "events per trigger by status over the kept window, newest trigger first",
        _aggregate,
        shared,
    )
    common.paging(aggregate)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trigger-id", help="only this trigger's events")
    parser.add_argument("--status", choices=STATUSES, help="only events with this status")
    parser.add_argument("--source", choices=SOURCES, help="only events from this source")


def _events_table(client: ApiClient) -> Callable[[list[dict[str, Any]]], str]:
    names = common.TriggerNames(client)
    return lambda items: render.events_table(items, common.now(), None, names.of(items))


def _list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return common.list_pages(
        args,
        client,
        out,
        "/events",
        {
            "view": args.view,
            "trigger_id": args.trigger_id,
            "status": args.status,
            "source": args.source,
            "is_test_run": args.test_runs,
            "since": args.since,
            "until": args.until,
        },
        _events_table(client),
    )


def _attempt_items(client: ApiClient, event_id: str) -> list[dict[str, Any]]:
    page = client.request("GET", f"/events/{quote_id(event_id)}/attempts")
    items: list[dict[str, Any]] = (page or {}).get("items") or []
    return items


def _get(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    event: dict[str, Any] = client.request("GET", f"/events/{quote_id(args.id)}")
    attempts = _attempt_items(client, args.id)
    name = common.TriggerNames(client).name(event.get("trigger_id"))
    show(
        args,
        {**event, "delivery_attempts": attempts},
        out,
        table=lambda: render.event_detail(event, common.now(), None, name, attempts),
        ids=lambda: [args.id],
    )
    return OK


def _attempts(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    items = _attempt_items(client, args.id)
    show(
        args,
        {"items": items},
        out,
        table=lambda: render.attempts_table(items, common.now(), None),
        ids=lambda: [str(a.get("attempt", "")) for a in items],
    )
    return OK


def _replay(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    if args.bulk:
        if args.id is not None:
            raise UsageError("give an event id or --bulk with filters, not both")
        return _replay_bulk(args, client, out)
    if args.id is None:
        raise UsageError("give the event id to replay (or --bulk with filters)")
    given = [f for f in ("trigger_id", "status", "since", "until", "limit") if getattr(args, f)]
    if given or args.dry_run:
        raise UsageError("the filters, --limit and --dry-run go with --bulk")
    try:
        answer = client.request("POST", f"/events/{quote_id(args.id)}/replay")
    except ApiError as exc:
        if exc.status in (404, 405) and _event_exists(client, args.id):
            # The event is there, so the route is what is missing: say so, rather than
            # leave the user to believe the event is unknown.
            exc.hint = (
                "the event exists, but this server has no replay endpoint "
                "(POST /api/v1/events/{id}/replay); it needs a newer eventtrigger"
            )
        raise
    event_id = str(answer.get("event_id"))
    show(
        args,
        answer,
        out,
        table=lambda: (
            f"replayed as event {event_id}; follow it: eventtrigger events get {event_id}"
        ),
        ids=lambda: [event_id],
    )
    return OK


def _event_exists(client: ApiClient, event_id: str) -> bool:
    try:
        client.request("GET", f"/events/{quote_id(event_id)}")
    except (ApiError, Unreachable):
        return False
    return True


def bulk_body(args: argparse.Namespace) -> dict[str, Any]:
    """POST /events/replay: the filters given (the API wants at least one)."""
    body = {
        key: getattr(args, key)
        for key in ("trigger_id", "status", "since", "until", "limit")
        if getattr(args, key) is not None
    }
    if not set(body) - {"limit"}:
        raise UsageError("--bulk needs at least one of --trigger-id, --status, --since, --until")
    return body


def pin_until(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    """`body` with `until` no later than `at` (the moment of the count), as the console
    does: events fired while the user reads the question are then not replayed uncounted.
    An `until` that does not parse is left for the API to refuse by name."""
    pinned = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    given = body.get("until")
    if given is None:
        return {**body, "until": pinned}
    try:
        until = datetime.fromisoformat(str(given).upper().replace("Z", "+00:00"))
    except ValueError:
        return body
    if until.tzinfo is None or until <= at:
        return body
    return {**body, "until": pinned}


def _matching(client: ApiClient, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int, bool]:
    """What a bulk replay of `body` would replay: the oldest events (at most its limit),
    read from both views as the replay does; how many match; and whether the count
    stopped at COUNT_CAP (then the oldest were not reached, and none are returned)."""
    query: dict[str, str | int | None] = {
        "trigger_id": body.get("trigger_id"),
        "status": body.get("status"),
        "since": body.get("since"),
        "until": body.get("until"),
        "limit": 500,
    }
    found: list[dict[str, Any]] = []
    for view in ("active", "archived"):
        for page in client.pages("/events", {**query, "view": view}, follow=True):
            found.extend(page.get("items") or [])
            if len(found) >= COUNT_CAP:
                # Pages come newest first: the oldest, which the replay takes, are past
                # the cap, so no listing of them could be right.
                return [], len(found), True
    found.sort(key=lambda e: (str(e.get("fired_at")), str(e.get("id"))))
    return found[: int(body.get("limit", 100))], len(found), False


def _replay_bulk(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = bulk_body(args)
    err = common.stderr(args)
    if args.dry_run or (not args.yes and common.interactive()):
        body = pin_until(body, common.now())
        events, total, capped = _matching(client, body)
        limit = int(body.get("limit", 100))
        count = f"{limit} of at least {total}" if capped else str(len(events))
        if args.dry_run:
            show(
                args,
                {"items": events, "matching": total, "complete": not capped},
                out,
                table=lambda: render.events_table(
                    events, common.now(), None, common.TriggerNames(client).of(events)
                ),
                ids=lambda: [str(e.get("id", "")) for e in events],
            )
            if capped:
                print(
                    f"at least {total} events match: the oldest {limit} would be replayed, "
                    "but they are past what a dry run reads, so none are listed; narrow "
                    "the filters (--since, --until) to see them",
                    file=err,
                )
            print(
                f"{count} event(s) would be replayed, oldest first (events whose schedule "
                "failed are skipped); nothing was replayed",
                file=err,
            )
            return OK
        if not total:
            print("nothing to replay: no event matches", file=err)
            return OK
        question = f"Replay {count} matching event(s), oldest first, as new events?"
    else:
        question = "Replay the matching events?"
    common.confirm(args, "replay", question, err)
    answer = client.request("POST", "/events/replay", body=body)
    new_ids = [str(i) for i in answer.get("event_ids") or []]
    show(
        args,
        answer,
        out,
        table=lambda: (
            "\n".join([f"replayed {len(new_ids)} event(s) as:", *new_ids])
            if new_ids
            else "nothing to replay"
        ),
        ids=lambda: new_ids,
    )
    return OK


# ---- tail ---------------------------------------------------------------------------


def _tail(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    names = common.TriggerNames(client)
    fmt = common.output_format(args)
    query: dict[str, str | int | None] = {
        "trigger_id": args.trigger_id,
        "status": args.status,
        "source": args.source,
    }

    def emit(event: dict[str, Any]) -> None:
        if fmt == "json":
            print(json.dumps(event, ensure_ascii=False), file=out)
        elif fmt == "yaml":
            out.write("---\n" + output.dump_yaml(event))
        elif fmt == "ids":
            print(render.printable(str(event.get("id"))), file=out)
        else:
            print(render.tail_line(event, names.name(event.get("trigger_id")), None), file=out)
        out.flush()  # a reader on a pipe sees each event when it happens

    err = common.stderr(args)
    try:
        for event in stream_events(client, query, err):
            emit(event)
    except ApiError as exc:
        if exc.status not in (404, 405):
            raise
        # An older server: no stream route (GET /events/stream reads as an event id).
        print(
            "eventtrigger: this server has no event stream (GET /api/v1/events/stream); "
            f"polling GET /api/v1/events every {POLL_SECONDS:g}s instead",
            file=err,
        )
        for event in poll_events(client, query):
            emit(event)
    return OK


def stream_events(
    client: ApiClient,
    query: dict[str, str | int | None],
    err: TextIO,
    *,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Events from the server-sent-events stream, for ever.

    Once a stream has been open, losing it (a restart, a proxy's timeout, a refused
    connection while the server is down, a 503 or 429 while it stops or is full) is an
    outage, not an error: the stream is opened again with a growing pause (the server's
    Retry-After when it gives one), saying "reconnecting" once per outage. The server
    does not replay what changed while no stream was open (it ignores Last-Event-ID), so
    the user is told how to catch up. A failure before the first stream opened is raised.
    """
    sleep = sleep or time.sleep
    opened = False  # a stream has been open: failures from now on are outages
    outage = False
    pauses = reconnect_delays()
    while True:
        parser = sse.Parser()  # fresh: half a message from a broken stream is dropped
        retry_after: float | None = None
        try:
            for line in client.stream("/events/stream", query):
                if not opened:
                    # On stderr, so stdout holds events only; scripts may wait for it.
                    print("following new events (Ctrl-C stops)", file=err, flush=True)
                    opened = True
                if outage:
                    print(
                        "eventtrigger: reconnected; events that changed while disconnected "
                        "are not shown (catch up: eventtrigger events list --since TIME)",
                        file=err,
                        flush=True,
                    )
                    outage = False
                    pauses = reconnect_delays()
                notice = line[1:].strip() if line.startswith(":") else ""
                if notice.startswith(SERVER_NOTICES):
                    print(render.printable(f"eventtrigger: server: {notice}"), file=err, flush=True)
                message = parser.feed(line)
                if message is None or message.event != "event":
                    continue
                try:
                    event = json.loads(message.data)
                except ValueError:
                    continue  # not ours to show; the next message may be fine
                if isinstance(event, dict):
                    yield event
        except Unreachable:
            if not opened:
                raise
        except ApiError as exc:
            if not opened or exc.status not in RETRIED_STATUSES:
                raise
            retry_after = exc.retry_after
        if not opened:
            return  # the server closed at once, and will again: stop rather than spin
        if not outage:
            print("eventtrigger: the event stream ended; reconnecting...", file=err, flush=True)
            outage = True
        pause = next(pauses)
        sleep(min(retry_after, MAX_RETRY_AFTER) if retry_after is not None else pause)


def reconnect_delays(
    first: float = RECONNECT_SECONDS, factor: float = 2.0, most: float = MAX_RECONNECT_SECONDS
) -> Iterator[float]:
    """1, 2, 4 ... seconds between attempts to reopen a lost stream, then `most` for ever."""
    delay = first
    while True:
        yield delay
        delay = min(most, delay * factor)


def poll_events(
    client: ApiClient,
    query: dict[str, str | int | None],
    *,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Events from polling GET /events every POLL_SECONDS: each event when first seen and
    again when its status changes. Times come from the server (its `fired_at`), so a skewed
    clock here cannot hide events."""
    sleep = sleep or time.sleep
    first = client.request("GET", "/events", query={**query, "limit": 1})
    items = (first or {}).get("items") or []
    seen: dict[str, tuple[str, str]] = {  # id -> (fired_at, status) as last shown
        str(e["id"]): (str(e.get("fired_at")), str(e.get("status"))) for e in items
    }
    since = str(items[0]["fired_at"]) if items else None
    while True:
        sleep(POLL_SECONDS)
        found: list[dict[str, Any]] = []
        for page in client.pages("/events", {**query, "since": since, "limit": 500}, True):
            found.extend(page.get("items") or [])
        for event in sorted(found, key=lambda e: (str(e.get("fired_at")), str(e.get("id")))):
            key, state = (
                str(event.get("id")),
                (str(event.get("fired_at")), str(event.get("status"))),
            )
            if seen.get(key) != state:
                seen[key] = state
                yield event
        # Look again from the oldest event still under way (its status may change), else
        # from the newest seen; forget what is older than that.
        open_times = [f for f, s in seen.values() if s not in ("success", "failure")]
        newest = max((f for f, _ in seen.values()), default=since)
        since = min([*open_times, newest]) if newest is not None else None
        if since is not None:
            seen = {k: v for k, v in seen.items() if v[0] >= since}


# ---- stats and aggregate ----------------------------------------------------------------


def _stats(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    if args.series is None:
        if args.trigger_id is not None:
            raise UsageError("--trigger-id goes with --series")
        figures: dict[str, Any] = client.request("GET", "/stats")
        failures = figures.get("latest_failures") or []
        show(
            args,
            figures,
            out,
            table=lambda: render.stats_view(
                figures, common.now(), None, common.TriggerNames(client).of(failures)
            ),
            ids=lambda: [str(f.get("id", "")) for f in failures if isinstance(f, dict)],
        )
        return OK
    series: dict[str, Any] = client.request(
        "GET", "/stats/series", query={"range": args.series, "trigger_id": args.trigger_id}
    )
    show(
        args,
        series,
        out,
        table=lambda: render.series_table(series, None),
        ids=lambda: [str(p.get("start", "")) for p in series.get("points") or []],
    )
    return OK


def _aggregate(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    names = common.TriggerNames(client)
    return common.list_pages(
        args,
        client,
        out,
        "/events",
        {"aggregate": "trigger"},
        lambda items: render.aggregate_table(items, common.now(), None, names.of(items)),
        id_key="trigger_id",
    )
