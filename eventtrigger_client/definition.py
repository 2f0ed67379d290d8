"""Trigger definitions from flags and `-f` documents: the bodies of create, update (PATCH)
and test-run requests. Pure: the command layer reads files and the current trigger.

Flags win over the file's fields. Config flags are merged into the config: the file's
when it has one, else (update) the trigger's current config, because PATCH replaces the
whole config and a flag must change one field only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

# The short names `--type` takes, and the API's names (which it takes too).
TYPE_NAMES = {
    "webhook": "webhook",
    "time": "time_scheduled",
    "cron": "cron_scheduled",
    "interval": "interval_scheduled",
}
TYPES = tuple(TYPE_NAMES.values())
METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
MISFIRE = ("fire_once", "skip", "fire_all")


class DefinitionError(ValueError):
    """A flag whose value cannot be part of a definition (the command layer: exit 2)."""


def trigger_type(text: str) -> str:
    """`--type`: a short name (webhook, time, cron, interval) or the API's name."""
    kind = TYPE_NAMES.get(text.lower(), text)
    if kind not in TYPES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a trigger type; use {', '.join(TYPE_NAMES)} (or {', '.join(TYPES)})"
        )
    return kind


def add_flags(parser: argparse.ArgumentParser, *, creating: bool, test_run: bool = False) -> None:
    """The definition flags of `triggers create|update` and `test-run`."""
    what = parser.add_argument_group("the trigger (flags win over the -f file's fields)")
    what.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="a JSON or YAML document: "
        + (
            'the PATCH body ({"name"?, "status"?, "config"?: the whole config})'
            if not creating
            else '{"name", "type", "config"' + (', "payload"?}' if test_run else ', "status"?}')
        )
        + "; - reads stdin",
    )
    what.add_argument("--name", help="the trigger's name")
    if creating:
        what.add_argument(
            "--type",
            type=trigger_type,
            help="webhook, time, cron or interval (the API's names work too); by default "
            "inferred from --schema, --at/--in, --cron or --every",
        )
    if not test_run:
        state = what.add_mutually_exclusive_group()
        state.add_argument(
            "--paused",
            dest="status",
            action="store_const",
            const="paused",
            help="create (or set) it paused: it does not fire until resumed",
        )
        if not creating:
            state.add_argument(
                "--active", dest="status", action="store_const", const="active", help="resume it"
            )
    call = parser.add_argument_group("the request it sends (config)")
    call.add_argument("--endpoint", metavar="URL", help="the http(s) URL the request goes to")
    call.add_argument("--method", type=str.upper, choices=METHODS, help="HTTP method (POST)")
    call.add_argument(
        "--header",
        action="append",
        dest="headers",
        metavar="'NAME: VALUE'",
        help="an extra request header; repeat for more (they replace the config's headers)",
    )
    call.add_argument(
        "--payload",
        metavar="JSON",
        help="the JSON body sent"
        + (" (wins over config.payload; webhook definitions need one)" if test_run else ""),
    )
    call.add_argument(
        "--delivery-timeout", metavar="DURATION", help="per-attempt timeout, 100ms to 2m (10s)"
    )
    call.add_argument("--retries", type=int, metavar="N", help="attempts at most, 1-20 (5)")
    call.add_argument("--retry-delay", metavar="DURATION", help="first retry delay (2s)")
    call.add_argument("--retry-max-delay", metavar="DURATION", help="longest retry delay (5m)")
    when = parser.add_argument_group("when it fires (config)")
    when.add_argument(
        "--schema", metavar="JSON", help="webhook: the JSON Schema calls must pass ({}: any JSON)"
    )
    when.add_argument(
        "--rate-limit",
        metavar="PER_SECOND/BURST",
        help="webhook: calls a second and burst it accepts, e.g. 10/20",
    )
    when.add_argument("--at", metavar="TIME", help="time: fire at this RFC 3339 time")
    when.add_argument("--in", dest="run_in", metavar="DURATION", help="time: fire this long after")
    when.add_argument("--cron", metavar="EXPR", help="cron: 5 fields, or 6 with seconds first")
    when.add_argument("--timezone", metavar="ZONE", help="cron: IANA time zone (UTC)")
    when.add_argument("--every", metavar="DURATION", help="interval: e.g. 30s, 5m, 1h")
    when.add_argument("--start-at", metavar="TIME", help="cron/interval: not before this time")
    when.add_argument("--end-at", metavar="TIME", help="cron/interval: not after this time")
    when.add_argument(
        "--misfire", choices=MISFIRE, help="scheduled: what to do with missed occurrences"
    )
    when.add_argument(
        "--misfire-grace", metavar="DURATION", help="scheduled: lateness still on time (60s)"
    )
    when.add_argument(
        "--auto-pause-after",
        type=int,
        metavar="N",
        help="scheduled: pause after N consecutive final failures",
    )
    when.add_argument("--jitter", metavar="DURATION", help="cron/interval: spread firings by")


def _json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DefinitionError(f"{flag} is not JSON: {exc}") from None


def _headers(given: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for text in given:
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise DefinitionError(f"--header {text!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _rate(text: str) -> dict[str, Any]:
    rate, slash, burst = text.partition("/")
    try:
        per_second = float(rate)
        limit: dict[str, Any] = {
            "per_second": int(per_second) if per_second.is_integer() else per_second,
            "burst": int(burst) if slash else max(1, int(per_second)),
        }
    except ValueError:
        raise DefinitionError(f"--rate-limit {text!r} is not PER_SECOND/BURST (10/20)") from None
    return limit


def config_fields(args: argparse.Namespace, *, payload_in_config: bool = True) -> dict[str, Any]:
    """The config fields the flags give (absent flags: absent fields)."""
    fields: dict[str, Any] = {}
    simple = {
        "endpoint": "endpoint",
        "method": "method",
        "delivery_timeout": "timeout",
        "at": "run_at",
        "run_in": "run_in",
        "cron": "cron",
        "timezone": "timezone",
        "every": "every",
        "start_at": "start_at",
        "end_at": "end_at",
        "misfire": "misfire",
        "misfire_grace": "misfire_grace",
        "auto_pause_after": "auto_pause_after",
        "jitter": "jitter",
    }
    for flag, key in simple.items():
        value = getattr(args, flag, None)
        if value is not None:
            fields[key] = value
    if getattr(args, "headers", None):
        fields["headers"] = _headers(args.headers)
    if payload_in_config and getattr(args, "payload", None) is not None:
        fields["payload"] = _json(args.payload, "--payload")
    if getattr(args, "schema", None) is not None:
        fields["schema"] = _json(args.schema, "--schema")
    if getattr(args, "rate_limit", None) is not None:
        fields["ingest_rate_limit"] = _rate(args.rate_limit)
    retry = {
        key: value
        for key, value in (
            ("max_attempts", getattr(args, "retries", None)),
            ("initial_delay", getattr(args, "retry_delay", None)),
            ("max_delay", getattr(args, "retry_max_delay", None)),
        )
        if value is not None
    }
    if retry:
        fields["retry"] = retry
    return fields


def merge_config(base: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """`base` with `fields` over it: `retry` merged key by key, and `run_at`/`run_in`
    (the API takes exactly one) replacing each other."""
    config = dict(base) if isinstance(base, dict) else {}
    for key, value in fields.items():
        if key == "retry" and isinstance(config.get("retry"), dict):
            config["retry"] = {**config["retry"], **value}
            continue
        if key == "run_at":
            config.pop("run_in", None)
        elif key == "run_in":
            config.pop("run_at", None)
        config[key] = value
    return config


def _inferred_type(fields: dict[str, Any]) -> str | None:
    hints = {
        "webhook": ("schema", "ingest_rate_limit"),
        "time_scheduled": ("run_at", "run_in"),
        "cron_scheduled": ("cron", "timezone"),
        "interval_scheduled": ("every",),
    }
    found = [kind for kind, keys in hints.items() if any(k in fields for k in keys)]
    return found[0] if len(found) == 1 else None


def _definition(
    document: dict[str, Any], args: argparse.Namespace, *, payload_in_config: bool
) -> dict[str, Any]:
    """create and test-run: the document with the name, type and config flags over it."""
    body = dict(document)
    if args.name is not None:
        body["name"] = args.name
    fields = config_fields(args, payload_in_config=payload_in_config)
    config = merge_config(body.get("config"), fields)
    if args.type is not None:
        body["type"] = args.type
    elif "type" not in body:
        body["type"] = _inferred_type(config)
        if body["type"] is None:
            raise DefinitionError(
                "give --type (webhook, time, cron or interval) or a file with a type"
            )
    if body["type"] == "webhook" and "schema" not in config:
        config["schema"] = {}  # from flags alone: any JSON (--schema narrows it)
    body["config"] = config
    return body


def create_body(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """POST /triggers: the document (may be empty) with the flags over it."""
    body = _definition(document, args, payload_in_config=True)
    if getattr(args, "status", None) is not None:
        body["status"] = args.status
    if "name" not in body:
        raise DefinitionError("give --name (or a file with a name)")
    return body


def ephemeral_body(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """POST /test-runs: like create's, with `--payload` as the top-level payload (which
    wins over config.payload and is what a webhook definition is fired with)."""
    body = _definition(document, args, payload_in_config=False)
    if args.payload is not None:
        body["payload"] = _json(args.payload, "--payload")
    return body


def needs_current_config(document: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether update must read the trigger first: config flags, and no config in the file."""
    return bool(config_fields(args)) and "config" not in document


def patch_body(
    document: dict[str, Any], args: argparse.Namespace, current_config: Any = None
) -> dict[str, Any]:
    """PATCH /triggers/{id}: only the fields given (the file's, then the flags over them)."""
    body = dict(document)
    if args.name is not None:
        body["name"] = args.name
    if getattr(args, "status", None) is not None:
        body["status"] = args.status
    fields = config_fields(args)
    if fields:
        base = body.get("config", current_config)
        body["config"] = merge_config(base, fields)
    if not body:
        raise DefinitionError("nothing to update: give flags (see --help) or -f FILE")
    return body
