"""Command line: `eventtrigger migrate`, `eventtrigger run --roles=...`, `--version`, plus
`healthcheck` (the container's probe), `echo` (a receiver for trying deliveries),
`rotate-secret-key`, `keys show-bootstrap` (the api's generated key, see
bootstrap_key.py), and beside them every client command of `eventtrigger_client` (`triggers`,
`events`, `stats`, `aggregate`, `test-run`, `keys`, `audit`, `login`, `completion`: see
`eventtrigger COMMAND --help`), which talk to a running API over HTTP only."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from eventtrigger import __version__, bootstrap_key
from eventtrigger.config import ROLES, Settings, SettingsError, load_settings
from eventtrigger_client import commands as client_commands


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
    parser = argparse.ArgumentParser(
        prog="eventtrigger",
        description=__doc__,
        epilog=client_commands.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"eventtrigger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    run = sub.add_parser("run", help="run roles in this process")
    run.add_argument(
        "--roles", default="all", help="all, or a comma-separated subset of " + ",".join(ROLES)
    )
    sub.add_parser("healthcheck", help="exit 0 when this container's /health answers 200")
    rotate = sub.add_parser(
        "rotate-secret-key",
        help="re-encrypt every stored signing secret under the first key of "
        "EVENTTRIGGER_SECRET_KEY (plaintext ones too); idempotent, safe while running",
    )
    rotate.add_argument("--batch", type=_batch, default=500, help="rows per transaction")
    echo = sub.add_parser("echo", help="run a receiver that logs every delivery it gets")
    echo.add_argument("--host", default="0.0.0.0")
    echo.add_argument("--port", type=int, default=8080)
    groups = client_commands.add_commands(sub)
    # Local, beside the client's `keys create|list|revoke|self`: it reads the server's file.
    groups["keys"].add_parser(
        "show-bootstrap",
        help="print the key in EVENTTRIGGER_BOOTSTRAP_KEY_FILE (made by the api's first start)",
    )
    parser.set_defaults(_root_parser=parser)  # `completion` completes this whole tree
    return parser


def _batch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size (1-10000)")
    return value


def rotate_secret_key(settings: Settings, batch: int) -> int:
    """`eventtrigger rotate-secret-key`: re-encrypt, then say how many rows changed."""
    from eventtrigger.store.db import Database
    from eventtrigger.store.secrets import rotate_key

    async def _rotate() -> None:
        db = Database(settings.database)
        await db.connect()  # the start check: every key id in use must be given
        try:
            done = await rotate_key(db, batch)
        finally:
            await db.close()
        print(
            f"re-encrypted under key {settings.database.secrets.current!r}: "
            f"{done.triggers} trigger(s), {done.events} event(s), "
            f"{done.archived} archived event(s)"
        )

    return _run_reporting(_rotate())


def healthcheck(port: int, timeout: float = 4.0) -> int:
    """Ask the process serving on `port` of this host for /health: 0 when 200, else 1.

    Standard library only, so the probe starts fast and needs nothing beyond the image.
    """
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            print(answer.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


def show_bootstrap(settings: Settings) -> int:
    """Print the bootstrap key alone on a line (for `KEY=$(...)`); 1 with the reason if none."""
    path = settings.bootstrap_key_file
    why = bootstrap_key.show_refusal(settings)
    if why is None and path is not None:
        try:
            key = bootstrap_key.read(path)
        except bootstrap_key.BootstrapKeyError as exc:
            key, why = None, str(exc)
        if key is not None:
            print(key)
            return 0
        why = why or f"no key generated yet: start the api first (it writes {path})"
    print(f"eventtrigger: {why}", file=sys.stderr)
    return 1


def _run_reporting(coro: Coroutine[Any, Any, None]) -> int:
    """Run `coro` to its end: 0. A refusal that waiting will not fix (a database
    certificate that does not verify, a server that demands TLS or lacks SKIP LOCKED,
    Kafka credentials refused or a topic missing, stored signing secrets the given keys
    cannot read) is one line, not a traceback: exit 1, or 2 for a configuration error."""
    from eventtrigger.bus import KafkaSetupError
    from eventtrigger.domain.secretbox import SecretKeyError
    from eventtrigger.store.db import DatabaseSetupError

    try:
        _run_async(coro)
    except KafkaSetupError as exc:
        print(f"eventtrigger: Kafka: {exc}", file=sys.stderr)
        return 1
    except DatabaseSetupError as exc:
        print(f"eventtrigger: database: {exc}", file=sys.stderr)
        return 1
    except SecretKeyError as exc:
        # The start check (store/secrets.py): a configuration error, as a bad value is.
        print(f"eventtrigger: configuration error: EVENTTRIGGER_SECRET_KEY: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_async(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    except ImportError:
        asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "echo":
        from eventtrigger.echo import serve

        serve(args.host, args.port)
        return 0
    if getattr(args, "action", None) is not None:
        # A client command (every one sets its action; `keys show-bootstrap` does not): an
        # HTTP client of a running API, which must work where no database or Kafka settings
        # exist, so it never goes through load_settings().
        return client_commands.run(args)
    try:
        settings: Settings = load_settings()
        roles = parse_roles(args.roles) if args.command == "run" else ()
        if args.command == "keys":
            return show_bootstrap(settings)
        made_key = False
        if "api" in roles and (key_file := bootstrap_key.key_file(settings)) is not None:
            key, made_key = bootstrap_key.obtain(key_file)
            settings = bootstrap_key.with_key(settings, key)
        if (
            "api" in roles
            and settings.auth_enabled
            and settings.bootstrap_keys_enabled
            and not settings.api_keys
        ):
            raise SettingsError(
                "EVENTTRIGGER_API_KEYS",
                "the api role needs at least one key (or EVENTTRIGGER_AUTH=disabled, or "
                "EVENTTRIGGER_BOOTSTRAP_KEYS=disabled with managed keys)",
            )
    except SettingsError as exc:
        print(f"eventtrigger: configuration error: {exc}", file=sys.stderr)
        return 2

    if args.command == "healthcheck":
        return healthcheck(settings.http_port)

    from loguru import logger

    from eventtrigger.observability.logs import setup_logging

    setup_logging(settings)
    for warning in settings.warnings:
        # Found while reading the settings, before there was a logger: said once, now.
        logger.bind(action="unknown_setting").warning("{}", warning)
    if made_key:
        # Once, on the start that made it, where `docker compose logs api` shows it; later
        # starts read the file without a word (the file is the place to look it up).
        logger.bind(action="bootstrap_key_generated", role="api").warning(
            "generated API key {} (kept in {}); show it again: {}",
            str(settings.api_keys[0]),
            settings.bootstrap_key_file,
            bootstrap_key.SHOW_AGAIN,
        )
    if args.command == "migrate":
        from eventtrigger.store.migrate import migrate

        async def _migrate() -> None:
            applied = await migrate(settings.database)
            print(f"migrations applied: {applied or 'none (up to date)'}")

        return _run_reporting(_migrate())

    if args.command == "rotate-secret-key":
        return rotate_secret_key(settings, args.batch)

    from eventtrigger.roles.runner import run

    return _run_reporting(run(settings, roles))


if __name__ == "__main__":
    sys.exit(main())
