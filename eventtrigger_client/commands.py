"""The `triggers` and `events` subcommands: their arguments, what each one calls, exit codes.

Exit codes (also in every `--help`):
  0  done
  1  the API refused the request (any 4xx: invalid field, bad key, unknown id, ...)
  2  bad usage or configuration: arguments, an unreadable or non-JSON `-f` file or
     `--payload`, a URL that is not http(s) (argparse also uses 2)
  3  the server failed (5xx) or could not be reached (refused, timeout, not our API)
Errors go to stderr as the problem's `detail` and one `field: message` line per entry of
its `errors`; stdout carries results only, so `--json` output can be piped as is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from eventtrigger_client import render
from eventtrigger_client.api import ApiClient, ApiError, Unreachable

OK, REFUSED, USAGE, SERVER = 0, 1, 2, 3
DEFAULT_URL = "http://localhost:8080"
GROUPS = ("triggers", "events", "audit")

EXIT_CODES = """\
environment:
  EVENTTRIGGER_URL      API base URL (default http://localhost:8080); --url wins
  EVENTTRIGGER_API_KEY  management API key; --api-key wins

exit codes:
  0  done
  1  the API refused the request (4xx: invalid fields, bad key, unknown id, ...)
  2  bad usage or configuration (arguments, -f file or --payload not JSON, bad URL)
  3  server error (5xx) or server unreachable (refused, timeout, not an eventtrigger API)

Tables show times in this machine's time zone; --json prints the API's JSON unchanged
(with --all, one {"items": [...], "next_cursor": null} holding every page)."""


class UsageError(Exception):
    """A problem with what the user asked for, found before any request: exit 2."""


def _common() -> argparse.ArgumentParser:
    """Options every client command takes, accepted before or after the subcommand.

    Defaults are SUPPRESS so that a value given on `triggers` is not overwritten by the
    leaf parser's default (argparse copies subparser defaults over the namespace).
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS, help="API base URL")
    group.add_argument("--api-key", default=argparse.SUPPRESS, help="management API key")
    group.add_argument(
        "--timeout", type=float, default=argparse.SUPPRESS, help="seconds per request (30)"
    )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON"
    )
    return common


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `triggers ...` and `events ...` to the `eventtrigger` parser's subcommands."""
    common = _common()
    fmt = argparse.RawDescriptionHelpFormatter

    def leaf(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        action: Callable[[argparse.Namespace, ApiClient, TextIO], int],
        takes_id: str = "",
    ) -> argparse.ArgumentParser:
        parser = parent.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EXIT_CODES,
            formatter_class=fmt,
        )
        parser.set_defaults(action=action)
        if takes_id:
            parser.add_argument("id", help=f"the {takes_id} id")
        return parser

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        parser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EXIT_CODES,
            formatter_class=fmt,
        )
        return parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    triggers = group("triggers", "list, inspect and manage triggers through the HTTP API")
    listing = leaf(triggers, "list", "list triggers, newest first", _triggers_list)
    listing.add_argument(
        "--type", help="webhook, time_scheduled, cron_scheduled or interval_scheduled"
    )
    listing.add_argument("--status", help="active, paused or completed")
    _paging(listing)
    leaf(triggers, "get", "show one trigger", _triggers_get, "trigger")
    create = leaf(triggers, "create", "create a trigger from a JSON body", _triggers_create)
    create.add_argument(
        "-f",
        "--file",
        required=True,
        metavar="FILE",
        help='the trigger as JSON ({"name", "type", "config", "status"?}); - reads stdin',
    )
    leaf(triggers, "pause", "pause a trigger (it stops firing)", _status("paused"), "trigger")
    leaf(triggers, "resume", "resume a paused trigger", _status("active"), "trigger")
    test = leaf(
        triggers, "test", "fire a trigger once now, as a test run", _triggers_test, "trigger"
    )
    test.add_argument(
        "--payload",
        metavar="JSON",
        help="the payload to send (default: the trigger's own; webhook triggers need one)",
    )
    leaf(triggers, "delete", "delete a trigger (its event logs stay)", _triggers_delete, "trigger")

    events = group("events", "list and inspect event logs, replay events")
    listing = leaf(events, "list", "list events, newest first by fired time", _events_list)
    listing.add_argument("--view", help="active (default: within the active window) or archived")
    listing.add_argument("--trigger-id", help="only this trigger's events")
    listing.add_argument("--status", help="pending, retrying, success or failure")
    listing.add_argument("--source", help="api, scheduled, manual-test (or replay)")
    listing.add_argument(
        "--test-runs",
        choices=("true", "false"),
        help="only test runs (true) or only real firings (false)",
    )
    listing.add_argument("--since", help="fired at or after this RFC 3339 time")
    listing.add_argument("--until", help="fired before this RFC 3339 time")
    _paging(listing)
    leaf(events, "get", "show one event", _events_get, "event")
    leaf(events, "replay", "deliver an event again as a new event", _events_replay, "event")

    audit = group("audit", "read the audit trail of management changes (needs admin)")
    listing = leaf(audit, "list", "list audit entries, newest first", _audit_list)
    listing.add_argument("--target-id", help="only changes to this trigger, event or key")
    listing.add_argument("--key-id", help="only changes made with this API key")
    listing.add_argument(
        "--before", help="older than this RFC 3339 time, or a next_cursor of a previous page"
    )
    listing.add_argument("--limit", type=int, help="entries per page, 1-200 (server default 50)")
    listing.add_argument(
        "--all", action="store_true", help="follow next_cursor until the last page"
    )


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="items per page, 1-500 (server default 50)")
    parser.add_argument("--cursor", help="the next_cursor of a previous page")
    parser.add_argument("--all", action="store_true", help="follow next_cursor until the last page")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the parsed client command; its exit code. Needs no server-side settings."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        client = _client(args)
        code: int = args.action(args, client, out)
        return code
    except UsageError as exc:
        print(f"eventtrigger: {exc}", file=err)
        return USAGE
    except ApiError as exc:
        _report(exc, args, err)
        return SERVER if exc.status >= 500 else REFUSED
    except Unreachable as exc:
        print(f"eventtrigger: cannot reach the API: {exc}", file=err)
        return SERVER
    except KeyboardInterrupt:
        return 130  # as shells report an interrupted command; no traceback for a Ctrl-C
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly as Unix tools do, and point
        # stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


def _client(args: argparse.Namespace) -> ApiClient:
    url = getattr(args, "url", None) or os.environ.get("EVENTTRIGGER_URL") or DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the API URL must be http(s)://host[:port], not {url!r}")
    key = getattr(args, "api_key", None) or os.environ.get("EVENTTRIGGER_API_KEY") or None
    timeout = getattr(args, "timeout", 30.0)
    if not timeout > 0:
        raise UsageError("--timeout must be positive")
    return ApiClient(url, key, timeout)


def _report(exc: ApiError, args: argparse.Namespace, err: TextIO) -> None:
    title = exc.problem.get("title") if isinstance(exc.problem.get("title"), str) else None
    head = f"{exc.status} {title}" if title else str(exc.status)
    print(f"eventtrigger: {head}: {exc.detail}", file=err)
    for name, message in exc.field_errors:
        print(f"  {name}: {message}" if name else f"  {message}", file=err)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=err)
    if exc.status == 401 and not (
        getattr(args, "api_key", None) or os.environ.get("EVENTTRIGGER_API_KEY")
    ):
        print("  hint: no API key given; set EVENTTRIGGER_API_KEY or pass --api-key", file=err)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _now() -> datetime:
    return datetime.now(UTC)


def _dump(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out)


def _id(value: str) -> str:
    # Ids go into the path: quote so `a/b` or `?` cannot reach another route.
    return quote(value, safe="")


def _list(
    args: argparse.Namespace,
    client: ApiClient,
    out: TextIO,
    path: str,
    query: dict[str, str | int | None],
    draw: Callable[[list[dict[str, Any]]], str],
) -> int:
    query = {**query, "limit": args.limit, "cursor": args.cursor}
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for page in client.pages(path, query, follow=args.all):
        items.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
    if _wants_json(args):
        # One page: as the API answered it. --all: the pages joined, so scripts get one doc.
        _dump({"items": items, "next_cursor": cursor}, out)
        return OK
    print(draw(items), file=out)
    if cursor:
        # stderr, so the table on stdout stays clean for `| grep` and friends.
        print(f"(more: --cursor {cursor}, or --all)", file=sys.stderr)
    return OK


def _triggers_list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return _list(
        args,
        client,
        out,
        "/triggers",
        {"type": args.type, "status": args.status},
        lambda items: render.triggers_table(items, _now(), None),
    )


def _show_trigger(args: argparse.Namespace, trigger: Any, out: TextIO) -> int:
    if _wants_json(args):
        _dump(trigger, out)
    else:
        print(render.trigger_detail(trigger, _now(), None), file=out)
    return OK


def _triggers_get(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return _show_trigger(args, client.request("GET", f"/triggers/{_id(args.id)}"), out)


def _read_json_file(name: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{'stdin' if name == '-' else name} is not JSON: {exc}") from None


def _triggers_create(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = _read_json_file(args.file)
    return _show_trigger(args, client.request("POST", "/triggers", body=body, send_body=True), out)


def _status(status: str) -> Callable[[argparse.Namespace, ApiClient, TextIO], int]:
    def change(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
        trigger = client.request("PATCH", f"/triggers/{_id(args.id)}", body={"status": status})
        if _wants_json(args):
            _dump(trigger, out)
            return OK
        line = f"{trigger.get('id')} {trigger.get('name')!r}: {trigger.get('status')}"
        if trigger.get("next_fire_at"):
            line += f", next fire {render.when(trigger['next_fire_at'], _now(), None)}"
        print(line, file=out)
        return OK

    return change


def _triggers_test(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = None
    if args.payload is not None:
        try:
            body = {"payload": json.loads(args.payload)}
        except ValueError as exc:
            raise UsageError(f"--payload is not JSON: {exc}") from None
    answer = client.request("POST", f"/triggers/{_id(args.id)}/test", body=body)
    if _wants_json(args):
        _dump(answer, out)
    else:
        event_id = answer.get("event_id")
        print(
            f"test event {event_id} fired; follow it: eventtrigger events get {event_id}", file=out
        )
    return OK


def _triggers_delete(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    client.request("DELETE", f"/triggers/{_id(args.id)}")
    if not _wants_json(args):  # 204: there is no JSON to print
        print(f"deleted trigger {args.id}", file=out)
    return OK


def _events_list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return _list(
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
        lambda items: render.events_table(items, _now(), None),
    )


def _events_get(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    event = client.request("GET", f"/events/{_id(args.id)}")
    if _wants_json(args):
        _dump(event, out)
    else:
        print(render.event_detail(event, _now(), None), file=out)
    return OK


def _events_replay(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    try:
        answer = client.request("POST", f"/events/{_id(args.id)}/replay")
    except ApiError as exc:
        if exc.status in (404, 405) and _event_exists(client, args.id):
            # The event is there, so the route is what is missing: say so, rather than
            # leave the user to believe the event is unknown.
            exc.hint = (
                "the event exists, but this server has no replay endpoint "
                "(POST /api/v1/events/{id}/replay); it needs a newer eventtrigger"
            )
        raise
    if _wants_json(args):
        _dump(answer, out)
    else:
        event_id = answer.get("event_id")
        print(
            f"replayed as event {event_id}; follow it: eventtrigger events get {event_id}",
            file=out,
        )
    return OK


def _audit_list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    query: dict[str, str | int | None] = {
        "target_id": args.target_id,
        "key_id": args.key_id,
        "before": args.before,
        "limit": args.limit,
    }
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for page in client.pages("/audit", query, follow=args.all, cursor_param="before"):
        items.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
    if _wants_json(args):
        _dump({"items": items, "next_cursor": cursor}, out)
        return OK
    print(render.audit_table(items, _now(), None), file=out)
    if cursor:
        print(f"(more: --before {cursor}, or --all)", file=sys.stderr)
    return OK


def _event_exists(client: ApiClient, event_id: str) -> bool:
    try:
        client.request("GET", f"/events/{_id(event_id)}")
    except (ApiError, Unreachable):
        return False
    return True


# ---- keys: managed API keys (beside the local `keys show-bootstrap` of cli.py) --------


def add_key_commands(keys: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys create|list|revoke` (HTTP API clients) to the `keys` subcommands."""
    common = _common()

    def leaf(
        name: str, help_text: str, action: Callable[[argparse.Namespace, ApiClient, TextIO], int]
    ) -> argparse.ArgumentParser:
        parser = keys.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(action=action)
        return parser

    create = leaf("create", "make an API key (it is printed once: keep it)", _keys_create)
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        metavar="SCOPE",
        help="triggers:read, triggers:write, events:read, events:write, keys:admin or "
        "admin; repeat for more",
    )
    create.add_argument("--expires-at", help="an RFC 3339 time after which it is refused")
    leaf("list", "list API keys (managed and bootstrap)", _keys_list)
    revoke = leaf("revoke", "revoke an API key for good", _keys_revoke)
    revoke.add_argument("id", help="the key id")


def _keys_create(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body: dict[str, Any] = {"name": args.name, "scopes": args.scopes}
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    made = client.request("POST", "/keys", body=body)
    if _wants_json(args):
        _dump(made, out)
        return OK
    # The key alone on stdout (for `KEY=$(...)`); what it is on stderr.
    print(made.get("key"), file=out)
    print(
        f"key {made.get('id')} {made.get('name')!r} ({', '.join(made.get('scopes') or [])}); "
        "it is shown only now",
        file=sys.stderr,
    )
    return OK


def _keys_list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    page = client.request("GET", "/keys")
    if _wants_json(args):
        _dump(page, out)
    else:
        print(render.keys_table((page or {}).get("items") or [], _now(), None), file=out)
    return OK


def _keys_revoke(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    client.request("DELETE", f"/keys/{_id(args.id)}")
    if not _wants_json(args):  # 204: there is no JSON to print
        print(f"revoked key {args.id}", file=out)
    return OK
