"""The client's command tree and its dispatcher: which command runs, with which client, and
which exit code an error means.

Commands (each in its module): `triggers ...` and `test-run` (cmd_triggers), `events ...`,
`stats` and `aggregate` (cmd_events), `keys ...` and `audit list` (cmd_admin), `login`
(profiles) and `completion` (completion). `ROUTES_COVERED` says which command calls each
API route; a test holds it to the server's route list, so a new route needs a command.

Exit codes (also in every `--help`):
  0  done
  1  the API refused the request (any 4xx: invalid field, bad key, unknown id, ...), or
     with --wait: the delivery failed for good
  2  bad usage or configuration: arguments, an unreadable `-f` file, a `--payload` that
     is not JSON, a bad URL or profile, a confirmation declined or impossible (no
     terminal and no --yes); argparse also uses 2
  3  the server failed (5xx) or could not be reached (refused, timeout, not our API), or
     --wait ran out of time
  130  interrupted (Ctrl-C)
Errors go to stderr as the problem's `detail` and one `field: message` line per entry of
its `errors`; stdout carries results only, so `-o json` output can be piped as is.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from eventtrigger_client import (
    __version__,
    cmd_admin,
    cmd_events,
    cmd_triggers,
    completion,
    output,
    profiles,
)
from eventtrigger_client.api import ApiClient, ApiError, Unreachable
from eventtrigger_client.common import (
    EXIT_CODES,
    INTERRUPTED,
    OK,
    REFUSED,
    SERVER,
    USAGE,
    Subparsers,
    UsageError,
)
from eventtrigger_client.definition import DefinitionError
from eventtrigger_client.render import printable

__all__ = [
    "EXIT_CODES",
    "GROUPS",
    "OK",
    "REFUSED",
    "ROUTES_COVERED",
    "SERVER",
    "USAGE",
    "UsageError",
    "add_commands",
    "root_parser",
    "run",
]

# The top-level client commands (the server's `eventtrigger` adds its own beside them).
GROUPS = (
    "triggers",
    "events",
    "stats",
    "aggregate",
    "test-run",
    "keys",
    "audit",
    "login",
    "completion",
)

# Every /api/v1 route (method, path template) -> the command that calls it, as typed
# (a flag after the command when the flag is what selects the route).
ROUTES_COVERED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/triggers"): "triggers list",
    ("POST", "/api/v1/triggers"): "triggers create",
    ("GET", "/api/v1/triggers/{trigger_id}"): "triggers get",
    ("PATCH", "/api/v1/triggers/{trigger_id}"): "triggers update",
    ("DELETE", "/api/v1/triggers/{trigger_id}"): "triggers delete",
    ("POST", "/api/v1/triggers/{trigger_id}/test"): "triggers test",
    ("POST", "/api/v1/triggers/{trigger_id}/rotate-webhook-url"): "triggers rotate-url",
    ("POST", "/api/v1/triggers/{trigger_id}/rotate-secret"): "triggers rotate-secret",
    ("POST", "/api/v1/test-runs"): "test-run",
    ("GET", "/api/v1/events"): "events list",
    ("GET", "/api/v1/events/stream"): "events tail",
    ("GET", "/api/v1/events/{event_id}"): "events get",
    ("GET", "/api/v1/events/{event_id}/attempts"): "events attempts",
    ("POST", "/api/v1/events/{event_id}/replay"): "events replay",
    ("POST", "/api/v1/events/replay"): "events replay --bulk",
    ("GET", "/api/v1/stats"): "stats",
    ("GET", "/api/v1/stats/series"): "stats --series",
    ("GET", "/api/v1/keys"): "keys list",
    ("POST", "/api/v1/keys"): "keys create",
    ("GET", "/api/v1/keys/self"): "keys self",
    ("DELETE", "/api/v1/keys/{key_id}"): "keys revoke",
    ("GET", "/api/v1/audit"): "audit list",
}
# Also GET /api/v1/events?aggregate=trigger: `aggregate`. Not a client command: the public
# webhook ingestion route (POST /api/v1/webhook/{token}), called by senders with its URL.


def shared_options() -> argparse.ArgumentParser:
    """Options every client command takes, accepted before or after the subcommand.

    Defaults are SUPPRESS so that a value given on `triggers` is not overwritten by the
    leaf parser's default (argparse copies subparser defaults over the namespace).
    """
    shared = argparse.ArgumentParser(add_help=False)
    group = shared.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS, help="API base URL")
    group.add_argument("--api-key", default=argparse.SUPPRESS, help="management API key")
    group.add_argument(
        "--timeout", type=float, default=argparse.SUPPRESS, help="seconds per request (30)"
    )
    group.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help="the config file's profile to use (EVENTTRIGGER_PROFILE): its URL and key "
        "together, whatever EVENTTRIGGER_URL and EVENTTRIGGER_API_KEY say",
    )
    group.add_argument(
        "-o",
        "--output",
        choices=output.FORMATS,
        default=argparse.SUPPRESS,
        help="table (default), json, yaml or ids (one id a line)",
    )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="the same as -o json"
    )
    return shared


def add_commands(sub: Subparsers) -> dict[str, Subparsers]:
    """Add every client command (GROUPS) to a program's subcommands; the subcommands of
    the groups a program may extend (`keys`: the server adds `show-bootstrap`)."""
    shared = shared_options()
    cmd_triggers.add(sub, shared)
    cmd_events.add(sub, shared)
    keys = cmd_admin.add(sub, shared)
    profiles.add_login_command(sub, shared)
    completion.add_completion_command(sub, shared)
    return {"keys": keys}


def root_parser() -> argparse.ArgumentParser:
    """The `eventtrigger` parser of the client alone (the client-only distribution)."""
    parser = argparse.ArgumentParser(
        prog="eventtrigger",
        description="The eventtrigger command-line client: manage triggers, follow events "
        "and deliveries over the HTTP API.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"eventtrigger-client {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    parser.set_defaults(_root_parser=parser)
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the parsed client command; its exit code. Needs no server-side settings."""
    out = out or sys.stdout
    err = err or sys.stderr
    args._err = err  # the actions' stderr (common.stderr)
    client: ApiClient | None = None
    try:
        if getattr(args, "needs_client", True):
            client = _client(args, err)
        code: int = args.action(args, client, out)
        return code
    except (UsageError, DefinitionError, profiles.ProfileError) as exc:
        print(f"eventtrigger: {exc}", file=err)
        return USAGE
    except ApiError as exc:
        _report(exc, client, err)
        return SERVER if exc.status >= 500 else REFUSED
    except Unreachable as exc:
        print(printable(f"eventtrigger: cannot reach the API: {exc}"), file=err)
        return SERVER
    except KeyboardInterrupt:
        return INTERRUPTED  # no traceback for a Ctrl-C (`events tail` ends this way)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly as Unix tools do, and point
        # stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


def _client(args: argparse.Namespace, err: TextIO) -> ApiClient:
    where = profiles.connection(args, err=err)
    return ApiClient(where.url, where.api_key, where.timeout)


def _report(exc: ApiError, client: ApiClient | None, err: TextIO) -> None:
    title = exc.problem.get("title") if isinstance(exc.problem.get("title"), str) else None
    head = f"{exc.status} {title}" if title else str(exc.status)
    # The answer may be a proxy's page or echo what a user sent: shown, never obeyed.
    print(printable(f"eventtrigger: {head}: {exc.detail}"), file=err)
    for name, message in exc.field_errors:
        print(printable(f"  {name}: {message}" if name else f"  {message}"), file=err)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=err)
    if exc.status == 401 and client is not None and not client.api_key:
        print(
            "  hint: no API key given; set EVENTTRIGGER_API_KEY or pass --api-key "
            "(or save one in a profile: eventtrigger login)",
            file=err,
        )


def command_paths(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command under `parser` by its path (`triggers list`), for checks and docs."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(node: argparse.ArgumentParser, path: str) -> None:
        found[path] = node
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}".strip())

    walk(parser, "")
    return found
