"""The CLI covers the API: every /api/v1 route the server serves has a client command
(`commands.ROUTES_COVERED`), and every command named there exists, with its flag."""

from __future__ import annotations

import argparse
from datetime import timedelta

from starlette.routing import Route

from eventtrigger.cli import _parser
from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.api.app import routes
from eventtrigger.roles.api.middleware import WEBHOOK_ROUTE
from eventtrigger.store.db import Database
from eventtrigger_client import commands

H = timedelta(hours=1)
# Not a client command: senders call the webhook URL itself, which is its own credential.
NOT_FOR_THE_CLI = {("POST", WEBHOOK_ROUTE)}


def served_api_routes(settings: Settings) -> set[tuple[str, str]]:
    """(method, path template) of every /api/v1 route the api role serves."""
    res = Resources(
        settings=settings,
        clock=SystemClock(),
        db=Database(settings.database),
        health=Health((), {}),
        metrics=Metrics(),
        stats=StatsKeeper(Database(settings.database), Windows(H, 2 * H), Metrics()),
    )
    return {
        (method, route.path)
        for route in routes(res, api=True)
        if isinstance(route, Route) and route.path.startswith("/api/v1/")
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_api_route_has_a_cli_command_and_no_mapping_is_stale(settings: Settings) -> None:
    served = served_api_routes(settings) - NOT_FOR_THE_CLI
    assert served, "no API routes found"
    missing = sorted(served - set(commands.ROUTES_COVERED))
    assert not missing, (
        f"API routes without a CLI command (add one, and to ROUTES_COVERED): {missing}"
    )
    stale = sorted(set(commands.ROUTES_COVERED) - served)
    assert not stale, f"ROUTES_COVERED names routes the server does not serve: {stale}"


def test_the_live_tail_route_is_covered_by_events_tail() -> None:
    assert commands.ROUTES_COVERED[("GET", "/api/v1/events/stream")] == "events tail"


def _command(
    parser: argparse.ArgumentParser, typed: str
) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of the command `typed` names, and the flags typed after it."""
    words = typed.split()
    flags = [w for w in words if w.startswith("-")]
    path = " ".join(w for w in words if not w.startswith("-"))
    found = commands.command_paths(parser)
    assert path in found, f"{typed!r}: no command {path!r}"
    return found[path], flags


def test_every_mapped_command_exists_with_its_flag_in_both_programs() -> None:
    for parser in (commands.root_parser(), _parser()):
        for route, typed in commands.ROUTES_COVERED.items():
            command, flags = _command(parser, typed)
            for flag in flags:
                assert flag in command._option_string_actions, f"{route}: {typed!r} lacks {flag}"
            assert command.get_default("action") is not None, f"{typed!r} runs nothing"


def test_the_server_program_has_every_client_command_and_its_own() -> None:
    client = set(commands.command_paths(commands.root_parser()))
    full = set(commands.command_paths(_parser()))
    assert client <= full
    assert full - client == {
        "migrate", "run", "healthcheck", "rotate-secret-key", "echo", "keys show-bootstrap",
    }  # fmt: skip
    assert {path.split()[0] for path in client if path} == set(commands.GROUPS)
