"""What every client command shares: exit codes, the output switch, confirmations, `-f`
documents and JSON flags, and trigger names for tables.

Commands print results on stdout and everything else (prompts, hints, progress) on
stderr, so `-o json`, `-o yaml` and `-o ids` can be piped as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeAlias
from urllib.parse import quote

from eventtrigger_client import output, render
from eventtrigger_client.api import ApiClient, ApiError

OK, REFUSED, USAGE, SERVER = 0, 1, 2, 3
INTERRUPTED = 130  # as shells report a command stopped by Ctrl-C

Action = Callable[[argparse.Namespace, ApiClient, TextIO], int]

EXIT_CODES = """\
connection (a URL and its key come from the same place):
  --url, --api-key, --timeout flags win, each for itself; a profile chosen with
  --profile or EVENTTRIGGER_PROFILE gives its URL and key as a pair (EVENTTRIGGER_URL
  and EVENTTRIGGER_API_KEY are then not used); else EVENTTRIGGER_URL with
  EVENTTRIGGER_API_KEY, else the default profile in ~/.config/eventtrigger/config.toml
  (`eventtrigger login` writes one); a key from the environment or a profile goes to
  another URL only when --url says so; the URL defaults to http://localhost:8080, and
  only there is the api's bootstrap key file (EVENTTRIGGER_BOOTSTRAP_KEY_FILE) used

exit codes:
  0  done
  1  the API refused the request (4xx: invalid fields, bad key, unknown id, ...), or
     with --wait: the delivery failed for good
  2  bad usage or configuration (arguments, -f file or --payload not JSON/YAML, bad URL
     or profile), or a confirmation declined or impossible (no terminal and no --yes)
  3  server error (5xx) or server unreachable (refused, timeout, not an eventtrigger
     API), or --wait gave up before the delivery's outcome was known
  130  interrupted (Ctrl-C)

Tables show times in this machine's time zone and trigger names (the id when the trigger
is gone); -o json and -o yaml print the API's answer as it is (with --all, one
{"items": [...], "next_cursor": null} holding every page); -o ids one id a line; --json is
-o json."""


class UsageError(Exception):
    """A problem with what the user asked for, found before any request: exit 2."""


def output_format(args: argparse.Namespace) -> str:
    """`--output` when given, else `json` for `--json`, else `table`."""
    chosen = getattr(args, "output", None)
    if chosen:
        return str(chosen)
    return "json" if getattr(args, "json", False) else "table"


def show(
    args: argparse.Namespace,
    value: Any,
    out: TextIO,
    *,
    table: Callable[[], str],
    ids: Callable[[], Iterable[str]],
) -> None:
    """Print one command's answer in the format the user asked for."""
    output.emit(output_format(args), value, out, table=table, ids=ids)


def done(args: argparse.Namespace, out: TextIO, message: str, ident: str) -> None:
    """After a 204: `message` for a table, `ident` for ids; json and yaml print nothing,
    as the API answered nothing."""
    fmt = output_format(args)
    if fmt == "table":
        print(message, file=out)
    elif fmt == "ids":
        print(ident, file=out)


def wants_table(args: argparse.Namespace) -> bool:
    return output_format(args) == "table"


def now() -> datetime:
    return datetime.now(UTC)


def quote_id(value: str) -> str:
    """An id for a path segment: quoted so `a/b` or `?` cannot reach another route."""
    return quote(value, safe="")


def json_flag(text: str | None, flag: str) -> Any:
    """The JSON value of a flag such as `--payload`; UsageError when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag} is not JSON: {exc}") from None


def read_document(name: str) -> Any:
    """The JSON or YAML document in file `name` (`-`: stdin), as a JSON value."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name}: {exc}") from None
    try:
        return output.load_document(text, name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def read_object(name: str) -> dict[str, Any]:
    """`read_document`, which must hold an object (a mapping)."""
    value = read_document(name)
    if not isinstance(value, dict):
        shown = "stdin" if name == "-" else name
        raise UsageError(f"{shown} must hold an object, not {type(value).__name__}")
    return value


def interactive() -> bool:
    """Whether a person can answer a question: stdin is a terminal."""
    return sys.stdin.isatty()


def confirm(args: argparse.Namespace, verb: str, question: str, err: TextIO) -> None:
    """Go on only with `--yes`, or a `y` typed at the terminal; else UsageError (exit 2).

    Without a terminal nobody can answer, and a script that forgot `--yes` must not
    destroy anything by default.
    """
    if getattr(args, "yes", False):
        return
    if not interactive():
        raise UsageError(f"refusing to {verb} without --yes when not on a terminal")
    # The question may name a trigger or key: what its author typed is shown, not obeyed.
    print(f"{render.printable(question)} [y/N] ", end="", file=err, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError(f"not confirmed: nothing to {verb}")


class TriggerNames:
    """Trigger names for tables, each asked once per run (GET /triggers/{id}).

    A trigger that is gone (404), or a key that may not read triggers, leaves the id
    shown; after a refusal of the key nothing more is asked.
    """

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.known: dict[str, str | None] = {}
        self.refused = False

    def name(self, trigger_id: object) -> str | None:
        if not isinstance(trigger_id, str) or not trigger_id:
            return None
        if trigger_id not in self.known:
            self.known[trigger_id] = None if self.refused else self._ask(trigger_id)
        return self.known[trigger_id]

    def of(self, items: Iterable[dict[str, Any]], key: str = "trigger_id") -> dict[str, str]:
        """id -> name for every trigger `items` name under `key` (found ones only)."""
        found: dict[str, str] = {}
        for item in items:
            trigger_id = item.get(key)
            name = self.name(trigger_id)
            if name is not None and isinstance(trigger_id, str):
                found[trigger_id] = name
        return found

    def _ask(self, trigger_id: str) -> str | None:
        try:
            trigger = self.client.request("GET", f"/triggers/{quote_id(trigger_id)}")
        except ApiError as exc:
            if exc.status in (401, 403):
                self.refused = True
            elif exc.status >= 500:
                raise
            return None
        name = trigger.get("name") if isinstance(trigger, dict) else None
        return name if isinstance(name, str) else None


def stderr(args: argparse.Namespace) -> TextIO:
    """Where the command's messages go: the stream `commands.run` was given."""
    err = getattr(args, "_err", None)
    return err if err is not None else sys.stderr


# ---- building the parsers -------------------------------------------------------------

# A string: argparse's class cannot be subscripted at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def leaf(
    parent: Subparsers,
    name: str,
    help_text: str,
    action: Action,
    common: argparse.ArgumentParser,
    takes_id: str = "",
) -> argparse.ArgumentParser:
    """A command that runs `action`; with the connection and output options, the exit
    codes in its help, and (`takes_id`) a positional id."""
    parser = _command(parent, name, help_text, common)
    parser.set_defaults(action=action)
    if takes_id:
        parser.add_argument("id", help=f"the {takes_id} id")
    return parser


def group(
    sub: Subparsers, name: str, help_text: str, common: argparse.ArgumentParser
) -> Subparsers:
    """A command group (`triggers`, `events`, ...): its subcommands."""
    parser = _command(sub, name, help_text, common)
    return parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")


def _command(
    parent: Subparsers, name: str, help_text: str, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """A (sub)command parser with the shared options and the exit codes in its help."""
    return parent.add_parser(
        name,
        help=help_text,
        description=help_text,
        parents=[common],
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def paging(parser: argparse.ArgumentParser, most: int = 500) -> None:
    parser.add_argument("--limit", type=int, help=f"items per page, 1-{most} (server default 50)")
    parser.add_argument("--cursor", help="the next_cursor of a previous page")
    parser.add_argument("--all", action="store_true", help="follow next_cursor until the last page")


def list_pages(
    args: argparse.Namespace,
    client: ApiClient,
    out: TextIO,
    path: str,
    query: dict[str, str | int | None],
    draw: Callable[[list[dict[str, Any]]], str],
    *,
    cursor_param: str = "cursor",
    id_key: str = "id",
) -> int:
    """A list command: one page, or every page with `--all` (joined into one document)."""
    query = {**query, "limit": args.limit}
    query.setdefault(cursor_param, getattr(args, "cursor", None))
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for page in client.pages(path, query, follow=args.all, cursor_param=cursor_param):
        items.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
    show(
        args,
        {"items": items, "next_cursor": cursor},
        out,
        table=lambda: draw(items),
        ids=lambda: [str(item.get(id_key, "")) for item in items],
    )
    if cursor and wants_table(args):
        # stderr, so the table on stdout stays clean for `| grep` and friends.
        print(f"(more: --{cursor_param} {cursor}, or --all)", file=stderr(args))
    return OK
