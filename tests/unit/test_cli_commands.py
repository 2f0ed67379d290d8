"""The CLI client's argument handling and exit codes, without a server: what happens
before any request, and how API answers map to exit codes and stderr lines."""

from __future__ import annotations

import argparse
import io

import pytest

from eventtrigger.cli import _parser, main
from eventtrigger_client import commands
from eventtrigger_client.api import ApiClient, ApiError


def parse(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(list(argv))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = commands.run(parse(*argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_common_options_are_taken_before_or_after_the_subcommand() -> None:
    before = parse("triggers", "--json", "--url", "http://a:1", "list")
    after = parse("triggers", "list", "--json", "--url", "http://a:1")
    for args in (before, after):
        assert args.json is True
        assert args.url == "http://a:1"
    # Not given: absent (not a default that would hide the environment variable).
    assert not hasattr(parse("events", "list"), "url")


def test_the_client_needs_no_server_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A database URL the server side would refuse must not matter to the client.
    monkeypatch.setenv("EVENTTRIGGER_DATABASE_URL", "not a url")
    monkeypatch.setenv("EVENTTRIGGER_URL", "http://127.0.0.1:9")  # discard port: refused
    assert main(["triggers", "list", "--timeout", "2"]) == commands.SERVER


def test_bad_url_and_bad_input_are_usage_errors() -> None:
    code, _, err = run("triggers", "list", "--url", "localhost:8080")
    assert code == commands.USAGE
    assert "http(s)://host[:port]" in err

    code, _, err = run("triggers", "test", "01X", "--payload", "{nope", "--url", "http://a:1")
    assert code == commands.USAGE
    assert "--payload is not JSON" in err

    code, _, err = run("triggers", "create", "-f", "/nonexistent/t.json", "--url", "http://a:1")
    assert code == commands.USAGE
    assert "cannot read /nonexistent/t.json" in err


def test_argparse_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exited:
        parse("triggers", "create")  # -f is required
    assert exited.value.code == 2


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("events", "list", "--help")
    text = capsys.readouterr().out
    assert "exit codes:" in text
    assert "3  server error (5xx) or server unreachable" in text


@pytest.mark.parametrize(("status", "code"), [(400, 1), (401, 1), (404, 1), (500, 3), (503, 3)])
def test_api_errors_map_to_exit_codes(
    monkeypatch: pytest.MonkeyPatch, status: int, code: int
) -> None:
    problem = {
        "title": "Bad Request",
        "status": status,
        "detail": "The request has invalid fields.",
        "errors": [{"field": "config.cron", "message": "needs 5 fields"}],
    }

    def refuse(self: ApiClient, method: str, path: str, **_: object) -> object:
        raise ApiError(status, method, path, problem)

    monkeypatch.setattr(ApiClient, "request", refuse)
    got, out, err = run("triggers", "get", "01X", "--url", "http://a:1", "--api-key", "k")
    assert got == code
    assert out == ""
    assert err.splitlines() == [
        f"eventtrigger: {status} Bad Request: The request has invalid fields.",
        "  config.cron: needs 5 fields",
    ]


def test_a_non_problem_error_body_is_shown_in_short(monkeypatch: pytest.MonkeyPatch) -> None:
    def proxy(self: ApiClient, method: str, path: str, **_: object) -> object:
        raise ApiError(502, method, path, {}, "<html>Bad Gateway</html>")

    monkeypatch.setattr(ApiClient, "request", proxy)
    code, _, err = run("events", "get", "01X", "--url", "http://a:1")
    assert code == commands.SERVER
    assert err == "eventtrigger: 502: <html>Bad Gateway</html>\n"


def test_ids_are_quoted_into_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def record(self: ApiClient, method: str, path: str, **_: object) -> object:
        seen.append(path)
        return {"event_id": "01E"}

    monkeypatch.setattr(ApiClient, "request", record)
    run("triggers", "test", "../events?x=1", "--url", "http://a:1")
    assert seen == ["/triggers/..%2Fevents%3Fx%3D1/test"]


def test_api_prefix_in_the_url_is_accepted() -> None:
    assert ApiClient("http://h:8080/api/v1/", None).base_url == "http://h:8080"
    assert ApiClient("http://h:8080", None).base_url == "http://h:8080"
