"""`triggers list|get|create|update|delete|pause|resume|test|rotate-secret|rotate-url` and
`test-run`: trigger management over the API."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from eventtrigger_client import common, definition, render, waiting
from eventtrigger_client.api import ApiClient
from eventtrigger_client.common import OK, quote_id, show


def add(sub: common.Subparsers, shared: argparse.ArgumentParser) -> None:
    """Add the `triggers` group and `test-run` to the program's subcommands."""
    triggers = common.group(
        sub, "triggers", "list, inspect and manage triggers through the HTTP API", shared
    )

    def leaf(
        name: str, help_text: str, action: common.Action, takes_id: str = ""
    ) -> argparse.ArgumentParser:
        return common.leaf(triggers, name, help_text, action, shared, takes_id)

    listing = leaf("list", "list triggers, newest first", _list)
    listing.add_argument(
        "--type", type=definition.trigger_type, help="webhook, time, cron or interval"
    )
    listing.add_argument("--status", choices=("active", "paused", "completed"))
    common.paging(listing)
    leaf("get", "show one trigger", _get, "trigger")
    create = leaf(
        "create",
        "create a trigger from flags, a JSON/YAML file (-f), or both (flags win)",
        _create,
    )
    definition.add_flags(create, creating=True)
    update = leaf(
        "update",
        "change a trigger: only the fields given (config flags change those config fields)",
        _update,
        "trigger",
    )
    definition.add_flags(update, creating=False)
    delete = leaf("delete", "delete a trigger (its event logs stay)", _delete, "trigger")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    leaf("pause", "pause a trigger (it stops firing)", _status("paused"), "trigger")
    leaf("resume", "resume a paused trigger", _status("active"), "trigger")
    test = leaf("test", "fire a trigger once now, as a test run", _test, "trigger")
    test.add_argument(
        "--payload",
        metavar="JSON",
        help="the payload to send (default: the trigger's own; webhook triggers need one)",
    )
    waiting.add_flags(test)
    rotate = leaf(
        "rotate-secret",
        "new signing secret (printed once); the previous one also signs during --grace",
        _rotate_secret,
        "trigger",
    )
    rotate.add_argument(
        "--grace", metavar="DURATION", help="how long the previous secret also signs (24h)"
    )
    leaf(
        "rotate-url",
        "new webhook URL for a webhook trigger (the old one answers 404 at once)",
        _rotate_url,
        "trigger",
    )

    run = sub.add_parser(
        "test-run",
        help="fire an unsaved trigger definition once (nothing is stored but the event)",
        description="Fire an unsaved trigger definition once: from flags, a JSON/YAML file "
        "(-f), or both (flags win). Prints the event id and the secret that signs it.",
        parents=[shared],
        epilog=common.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(action=_test_run)
    definition.add_flags(run, creating=True, test_run=True)
    waiting.add_flags(run)


def _list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return common.list_pages(
        args,
        client,
        out,
        "/triggers",
        {"type": args.type, "status": args.status},
        lambda items: render.triggers_table(items, common.now(), None),
    )


def _show(args: argparse.Namespace, trigger: Any, out: TextIO) -> int:
    show(
        args,
        trigger,
        out,
        table=lambda: render.trigger_detail(trigger, common.now(), None),
        ids=lambda: [str(trigger.get("id", ""))],
    )
    return OK


def _get(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return _show(args, client.request("GET", f"/triggers/{quote_id(args.id)}"), out)


def _document(args: argparse.Namespace) -> dict[str, Any]:
    return common.read_object(args.file) if args.file is not None else {}


def _create(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = definition.create_body(_document(args), args)
    return _show(args, client.request("POST", "/triggers", body=body), out)


def _update(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    document = _document(args)
    path = f"/triggers/{quote_id(args.id)}"
    current = None
    if definition.needs_current_config(document, args):
        # PATCH replaces the whole config: start from the trigger's own.
        current = client.request("GET", path).get("config")
    body = definition.patch_body(document, args, current)
    return _show(args, client.request("PATCH", path, body=body), out)


def _delete(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    path = f"/triggers/{quote_id(args.id)}"
    if not args.yes and common.interactive():
        trigger = client.request("GET", path)  # the name, for the question (and a 404 now)
        question = f"Delete trigger {trigger.get('name')} ({args.id})?"
    else:
        question = f"Delete trigger {args.id}?"
    common.confirm(args, "delete", question, common.stderr(args))
    client.request("DELETE", path)
    common.done(args, out, f"deleted trigger {args.id}", args.id)
    return OK


def _status(status: str) -> common.Action:
    def change(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
        trigger = client.request("PATCH", f"/triggers/{quote_id(args.id)}", body={"status": status})

        def line() -> str:
            text = f"{trigger.get('id')} {trigger.get('name')!r}: {trigger.get('status')}"
            if trigger.get("next_fire_at"):
                text += f", next fire {render.when(trigger['next_fire_at'], common.now(), None)}"
            return text

        show(args, trigger, out, table=line, ids=lambda: [str(trigger.get("id", ""))])
        return OK

    return change


def _fired(args: argparse.Namespace, client: ApiClient, out: TextIO, answer: Any, what: str) -> int:
    """After a test or test run: wait for the outcome (--wait), or say how to follow it."""
    event_id = str(answer.get("event_id"))
    if args.wait:
        if common.wants_table(args):
            print(f"{what} {event_id} fired; waiting for its outcome", file=common.stderr(args))
        return waiting.report(args, client, event_id, out)

    def line() -> str:
        text = f"{what} {event_id} fired; follow it: eventtrigger events get {event_id}"
        if answer.get("signing_secret"):
            text += f"\nsigned with {answer['signing_secret']}"
        return text

    show(args, answer, out, table=line, ids=lambda: [event_id])
    return OK


def _test(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = None
    if args.payload is not None:
        body = {"payload": common.json_flag(args.payload, "--payload")}
    answer = client.request("POST", f"/triggers/{quote_id(args.id)}/test", body=body)
    return _fired(args, client, out, answer, "test event")


def _test_run(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = definition.ephemeral_body(_document(args), args)
    answer = client.request("POST", "/test-runs", body=body)
    return _fired(args, client, out, answer, "test run event")


def _rotate_secret(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body = {"grace": args.grace} if args.grace is not None else None
    answer = client.request(
        "POST", f"/triggers/{quote_id(args.id)}/rotate-secret", body=body, send_body=False
    )
    if common.wants_table(args):
        # The secret alone on stdout (for `SECRET=$(...)`); what it means on stderr.
        print(answer.get("signing_secret"), file=out)
        until = render.when(answer.get("previous_secret_expires_at"), common.now(), None)
        print(
            f"new signing secret of trigger {args.id}; it is shown only now. The previous "
            f"one also signs until {until}",
            file=common.stderr(args),
        )
        return OK
    show(args, answer, out, table=str, ids=lambda: [args.id])
    return OK


def _rotate_url(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    trigger = client.request("POST", f"/triggers/{quote_id(args.id)}/rotate-webhook-url")
    if common.wants_table(args):
        print(trigger.get("webhook_url"), file=out)
        print(
            f"new webhook URL of trigger {args.id}; the old one answers 404 from now on",
            file=common.stderr(args),
        )
        return OK
    return _show(args, trigger, out)
