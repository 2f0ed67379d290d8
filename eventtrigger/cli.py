"""Command line: `eventtrigger migrate`, `eventtrigger run --roles=...`, `--version`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from eventtrigger import __version__
from eventtrigger.config import ROLES, Settings, SettingsError, load_settings


def parse_roles(text: str) -> tuple[str, ...]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    if names == ["all"]:
        return ROLES
    unknown = [r for r in names if r not in ROLES]
    if unknown or not names:
        raise SettingsError(
            "--roles",
            f"unknown role {', '.join(unknown) or '(none)'}; use all or any of {', '.join(ROLES)}",
        )
    return tuple(dict.fromkeys(names))  # keep order, drop repeats


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventtrigger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"eventtrigger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    run = sub.add_parser("run", help="run roles in this process")
    run.add_argument(
        "--roles", default="all", help="all, or a comma-separated subset of " + ",".join(ROLES)
    )
    return parser


def _run_async(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    except ImportError:
        asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings: Settings = load_settings()
        roles = parse_roles(args.roles) if args.command == "run" else ()
        if "api" in roles and settings.auth_enabled and not settings.api_keys:
            raise SettingsError(
                "EVENTTRIGGER_API_KEYS",
                "the api role needs at least one key (or EVENTTRIGGER_AUTH=disabled)",
            )
    except SettingsError as exc:
        print(f"eventtrigger: configuration error: {exc}", file=sys.stderr)
        return 2

    from eventtrigger.observability.logs import setup_logging

    setup_logging(settings)
    if args.command == "migrate":
        from eventtrigger.store.migrate import migrate

        async def _migrate() -> None:
            applied = await migrate(settings.database)
            print(f"migrations applied: {applied or 'none (up to date)'}")

        _run_async(_migrate())
        return 0

    from eventtrigger.roles.runner import run

    _run_async(run(settings, roles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
