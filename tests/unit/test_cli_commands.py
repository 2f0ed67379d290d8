"""The CLI client's argument handling and exit codes, without a server: what happens
before any request, and how API answers map to exit codes and stderr lines."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventtrigger.cli import _parser, main
from eventtrigger_client import cmd_events, commands, common, sse, waiting
from eventtrigger_client.api import ApiClient, ApiError, Unreachable


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


@pytest.mark.parametrize(
    "argv",
    [
        ("triggers", "create", "--type", "hourly"),  # not a trigger type
        ("triggers", "delete"),  # the id is required
        ("triggers", "list", "--output", "xml"),
        ("events", "tail", "--status", "done"),
    ],
)
def test_argparse_usage_errors_exit_2(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
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


# ---- argument -> request mapping, against a fake API ------------------------------------


class FakeApi(ApiClient):
    """Records every request; answers from `answers` ((method, path) -> value, a list of
    values taken in turn, or an ApiError to raise)."""

    def __init__(self, answers: dict[tuple[str, str], Any] | None = None) -> None:
        super().__init__("http://api.test", "k")
        self.answers = answers or {}
        self.calls: list[tuple[str, str, Any, Any]] = []
        self.lines: list[str] = []  # what stream() yields
        self.stream_error: ApiError | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        send_body: bool = False,
    ) -> Any:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        self.calls.append((method, path, params or None, body))
        answer = self.answers.get((method, path))
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def stream(
        self,
        path: str,
        query: Mapping[str, str | int | None] | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[str]:
        self.calls.append(("STREAM", path, dict(query or {}), last_event_id))
        if self.stream_error is not None:
            raise self.stream_error
        yield from self.lines
        raise KeyboardInterrupt  # as Ctrl-C ends a tail


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(commands, "_client", lambda args, err: api)
    monkeypatch.setattr(common, "interactive", lambda: False)
    return api


def sent(api: FakeApi, method: str) -> list[tuple[str, Any]]:
    return [(path, body) for m, path, _, body in api.calls if m == method]


def test_create_from_flags_maps_each_flag_to_the_body(fake: FakeApi) -> None:
    fake.answers[("POST", "/triggers")] = {"id": "01T", "name": "nightly"}
    code, out, _ = run(
        "triggers", "create", "--name", "nightly", "--type", "cron", "--cron", "0 3 * * *",
        "--timezone", "Europe/Paris", "--endpoint", "https://x.test/hook", "--method", "put",
        "--header", "X-A: 1", "--header", "X-B:two", "--payload", '{"a": 1}',
        "--retries", "3", "--retry-delay", "1s", "--retry-max-delay", "1m",
        "--delivery-timeout", "5s", "--misfire", "skip", "--misfire-grace", "2m",
        "--auto-pause-after", "4", "--jitter", "30s", "--paused", "-o", "ids",
    )  # fmt: skip
    assert (code, out) == (0, "01T\n")
    assert sent(fake, "POST") == [
        (
            "/triggers",
            {
                "name": "nightly",
                "type": "cron_scheduled",
                "config": {
                    "endpoint": "https://x.test/hook",
                    "method": "PUT",
                    "timeout": "5s",
                    "cron": "0 3 * * *",
                    "timezone": "Europe/Paris",
                    "misfire": "skip",
                    "misfire_grace": "2m",
                    "auto_pause_after": 4,
                    "jitter": "30s",
                    "headers": {"X-A": "1", "X-B": "two"},
                    "payload": {"a": 1},
                    "retry": {"max_attempts": 3, "initial_delay": "1s", "max_delay": "1m"},
                },
                "status": "paused",
            },
        )
    ]


def test_create_infers_the_type_and_a_webhook_accepts_any_json_by_default(fake: FakeApi) -> None:
    fake.answers[("POST", "/triggers")] = {"id": "01T"}
    run("triggers", "create", "--name", "tick", "--endpoint", "http://x.test", "--every", "5m")
    run("triggers", "create", "--name", "in", "--endpoint", "http://x.test", "--type", "webhook",
        "--rate-limit", "10/20")  # fmt: skip
    run("triggers", "create", "--name", "at", "--endpoint", "http://x.test", "--in", "10m")
    bodies = [body for _, body in sent(fake, "POST")]
    assert bodies[0]["type"] == "interval_scheduled"
    assert bodies[0]["config"] == {"endpoint": "http://x.test", "every": "5m"}
    assert bodies[1]["config"] == {
        "endpoint": "http://x.test",
        "ingest_rate_limit": {"per_second": 10, "burst": 20},
        "schema": {},
    }
    assert bodies[2]["type"] == "time_scheduled"
    assert bodies[2]["config"]["run_in"] == "10m"

    code, _, err = run("triggers", "create", "--name", "x", "--endpoint", "http://x.test")
    assert code == commands.USAGE
    assert "give --type" in err
    code, _, err = run("triggers", "create", "--type", "cron", "--cron", "* * * * *")
    assert code == commands.USAGE
    assert "give --name" in err
    code, _, err = run("triggers", "create", "--name", "x", "--every", "1m", "--header", "nocolon")
    assert code == commands.USAGE
    assert "--header 'nocolon' is not 'Name: value'" in err
    assert len(sent(fake, "POST")) == 3  # nothing sent for the refused ones


def test_create_from_a_yaml_file_with_flags_over_it(fake: FakeApi, tmp_path: Path) -> None:
    fake.answers[("POST", "/triggers")] = {"id": "01T"}
    file = tmp_path / "t.yaml"
    file.write_text(
        "name: from file\ntype: time_scheduled\nconfig:\n  endpoint: http://x.test\n"
        "  run_at: 2026-12-01T10:00:00Z\n  retry: {max_attempts: 2, max_delay: 1m}\n"
    )
    code, _, err = run(
        "triggers", "create", "-f", str(file), "--name", "from flags", "--in", "1h",
        "--retries", "7",
    )  # fmt: skip
    assert code == 0, err
    [(_, body)] = sent(fake, "POST")
    assert body == {
        "name": "from flags",
        "type": "time_scheduled",
        # --in replaces the file's run_at (the API takes one of the two); retry merged
        "config": {
            "endpoint": "http://x.test",
            "retry": {"max_attempts": 7, "max_delay": "1m"},
            "run_in": "1h",
        },
    }


def test_update_sends_only_the_fields_given(fake: FakeApi) -> None:
    current = {
        "id": "01T",
        "name": "tick",
        "config": {"endpoint": "http://x.test", "every": "5m", "retry": {"max_attempts": 5}},
    }
    fake.answers[("GET", "/triggers/01T")] = current
    fake.answers[("PATCH", "/triggers/01T")] = current

    assert run("triggers", "update", "01T", "--name", "renamed", "--paused")[0] == 0
    assert sent(fake, "GET") == []  # no config flag: the config is not read
    assert sent(fake, "PATCH") == [("/triggers/01T", {"name": "renamed", "status": "paused"})]

    fake.calls.clear()
    assert run("triggers", "update", "01T", "--every", "1m", "--retries", "2", "--active")[0] == 0
    # PATCH replaces the whole config, so the flags are merged into the current one
    assert sent(fake, "PATCH") == [
        (
            "/triggers/01T",
            {
                "status": "active",
                "config": {
                    "endpoint": "http://x.test",
                    "every": "1m",
                    "retry": {"max_attempts": 2},
                },
            },
        )
    ]

    fake.calls.clear()
    code, _, err = run("triggers", "update", "01T")
    assert code == commands.USAGE
    assert "nothing to update" in err
    assert fake.calls == []


def test_update_from_a_file_takes_its_config_as_the_whole_config(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.answers[("PATCH", "/triggers/01T")] = {"id": "01T"}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"config": {"endpoint": "http://y.test"}}'))
    assert run("triggers", "update", "01T", "-f", "-", "--cron", "*/2 * * * *")[0] == 0
    assert sent(fake, "GET") == []
    assert sent(fake, "PATCH") == [
        ("/triggers/01T", {"config": {"endpoint": "http://y.test", "cron": "*/2 * * * *"}})
    ]


def test_rotate_secret_prints_the_secret_alone_on_stdout(fake: FakeApi) -> None:
    path = "/triggers/01T/rotate-secret"
    fake.answers[("POST", path)] = {
        "signing_secret": "whsec_new",
        "previous_secret_expires_at": "2026-12-02T10:00:00Z",
    }
    code, out, err = run("triggers", "rotate-secret", "01T", "--grace", "1h")
    assert (code, out) == (0, "whsec_new\n")
    assert "shown only now" in err
    run("triggers", "rotate-secret", "01T")
    assert sent(fake, "POST") == [(path, {"grace": "1h"}), (path, None)]
    code, out, _ = run("triggers", "rotate-secret", "01T", "--json")
    assert json.loads(out)["signing_secret"] == "whsec_new"


def test_rotate_url_prints_the_new_url(fake: FakeApi) -> None:
    fake.answers[("POST", "/triggers/01T/rotate-webhook-url")] = {
        "id": "01T",
        "webhook_url": "http://api.test/api/v1/webhook/abc",
    }
    code, out, err = run("triggers", "rotate-url", "01T")
    assert (code, out) == (0, "http://api.test/api/v1/webhook/abc\n")
    assert "old one answers 404" in err


EVENT = {
    "id": "01E",
    "trigger_id": "01T",
    "source": "manual-test",
    "status": "pending",
    "attempts": 0,
    "last_status_code": None,
    "last_error": None,
}
ATTEMPTS = {
    "items": [
        {
            "attempt": 1,
            "started_at": "2026-12-01T10:00:00Z",
            "duration_ms": 12,
            "status_code": 200,
            "error": None,
            "next_attempt_at": None,
        }
    ]
}


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_test_wait_polls_until_the_outcome_and_exits_by_it(
    fake: FakeApi, no_sleep: list[float]
) -> None:
    fake.answers[("POST", "/triggers/01T/test")] = {"event_id": "01E"}
    done = {**EVENT, "status": "success", "attempts": 1, "last_status_code": 200}
    fake.answers[("GET", "/events/01E")] = [EVENT, EVENT, done]
    fake.answers[("GET", "/events/01E/attempts")] = ATTEMPTS
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    code, out, err = run("triggers", "test", "01T", "--payload", '{"n": 1}', "--wait")
    assert code == 0, err
    assert sent(fake, "POST") == [("/triggers/01T/test", {"payload": {"n": 1}})]
    assert no_sleep == [0.2, 0.30000000000000004]  # polite: growing pauses
    assert out.splitlines()[0] == (
        "event 01E for orders (01T): success after 1 attempt, last status code 200"
    )
    assert "ATTEMPT" in out.splitlines()[1]

    failed = {**EVENT, "status": "failure", "attempts": 1, "last_error": "HTTP 500"}
    fake.answers[("GET", "/events/01E")] = [failed]
    code, out, _ = run("triggers", "test", "01T", "--wait", "-o", "json")
    assert code == commands.REFUSED
    assert json.loads(out) == {"event": failed, "attempts": ATTEMPTS["items"]}


def test_test_wait_gives_up_after_its_timeout(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter(range(0, 1000, 3))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    fake.answers[("POST", "/triggers/01T/test")] = {"event_id": "01E"}
    fake.answers[("GET", "/events/01E")] = [{**EVENT, "status": "retrying"}]
    code, out, err = run("triggers", "test", "01T", "--wait", "--wait-timeout", "10")
    assert code == commands.SERVER
    assert out == ""
    assert "gave up waiting after 10s: event 01E is still retrying" in err


def test_wait_delays_grow_to_two_seconds() -> None:
    pauses = waiting.delays()
    got = [next(pauses) for _ in range(8)]
    assert got == pytest.approx([0.2, 0.3, 0.45, 0.675, 1.0125, 1.51875, 2.0, 2.0])


class Scripted(ApiClient):
    """Answers each request with the next of `answers`: a value, or an exception raised."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__("http://api.test", "k")
        self.answers = answers

    def request(self, method: str, path: str, **_: Any) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _ticking(step: float) -> Iterator[float]:
    return (n * step for n in itertools.count())


def test_wait_waits_through_a_first_404_a_503_and_an_unreachable_moment() -> None:
    done = {**EVENT, "status": "success"}
    client = Scripted(
        [
            ApiError(404, "GET", "/api/v1/events/01E"),  # not stored yet, right after the 202
            ApiError(503, "GET", "/api/v1/events/01E"),  # the server is restarting
            Unreachable("refused"),
            EVENT,
            done,
        ]
    )
    clock = _ticking(0.5)
    got = waiting.wait_for_outcome(
        client, "01E", 60, sleep=lambda s: None, clock=lambda: next(clock)
    )
    assert got == (done, True)


def test_wait_stops_on_a_lasting_404_or_another_refusal() -> None:
    missing = ApiError(404, "GET", "/api/v1/events/01E")
    clock = _ticking(1.0)
    client = Scripted([missing] * 20)
    with pytest.raises(ApiError):
        waiting.wait_for_outcome(client, "01E", 60, sleep=lambda s: None, clock=lambda: next(clock))
    assert len(client.answers) > 10  # it gave up after the first seconds, not at 60 s
    refused = ApiError(403, "GET", "/api/v1/events/01E")
    client = Scripted([refused, EVENT])
    with pytest.raises(ApiError) as raised:
        waiting.wait_for_outcome(client, "01E", 60, sleep=lambda s: None)
    assert raised.value is refused


def test_wait_raises_an_outage_that_outlasts_the_timeout() -> None:
    clock = _ticking(4.0)
    client = Scripted([Unreachable("refused")] * 10)
    with pytest.raises(Unreachable):
        waiting.wait_for_outcome(client, "01E", 10, sleep=lambda s: None, clock=lambda: next(clock))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "soon"])
def test_wait_timeout_must_be_a_finite_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("triggers", "test", "01T", "--wait", "--wait-timeout", value)
    assert exited.value.code == commands.USAGE
    assert "--wait-timeout" in capsys.readouterr().err
    assert parse("triggers", "test", "01T", "--wait-timeout", "0.5").wait_timeout == 0.5


def test_test_run_from_flags(fake: FakeApi) -> None:
    fake.answers[("POST", "/test-runs")] = {"event_id": "01E", "signing_secret": "whsec_t"}
    code, out, _ = run(
        "test-run", "--type", "webhook", "--endpoint", "http://x.test", "--payload", "[1]"
    )
    assert code == 0
    assert sent(fake, "POST") == [
        (
            "/test-runs",
            {"type": "webhook", "config": {"endpoint": "http://x.test", "schema": {}},
             "payload": [1]},
        )
    ]  # fmt: skip
    assert "test run event 01E fired" in out
    assert "whsec_t" in out


def test_delete_without_a_terminal_needs_yes(fake: FakeApi) -> None:
    code, out, err = run("triggers", "delete", "01T")
    assert (code, out) == (commands.USAGE, "")
    assert err == "eventtrigger: refusing to delete without --yes when not on a terminal\n"
    code, _, err = run("keys", "revoke", "01K")
    assert code == commands.USAGE
    assert "refusing to revoke without --yes" in err
    assert fake.calls == []

    assert run("triggers", "delete", "01T", "--yes") == (0, "deleted trigger 01T\n", "")
    assert run("keys", "revoke", "01K", "--yes", "-o", "json") == (0, "", "")
    assert [(m, p) for m, p, _, _ in fake.calls] == [
        ("DELETE", "/triggers/01T"),
        ("DELETE", "/keys/01K"),
    ]


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("\n", False)])
def test_delete_on_a_terminal_asks_with_the_name(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    monkeypatch.setattr(common, "interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    code, _, err = run("triggers", "delete", "01T")
    assert err.startswith("Delete trigger orders (01T)? [y/N] ")
    assert (code == 0) is deleted
    assert (sent(fake, "DELETE") == [("/triggers/01T", None)]) is deleted


def test_bulk_replay_maps_filters_and_needs_yes(fake: FakeApi) -> None:
    fake.answers[("POST", "/events/replay")] = {"event_ids": ["01N1", "01N2"]}
    code, _, err = run("events", "replay", "--bulk", "--status", "failure")
    assert code == commands.USAGE
    assert "refusing to replay without --yes" in err
    code, out, _ = run(
        "events", "replay", "--bulk", "--trigger-id", "01T", "--status", "failure",
        "--since", "2026-12-01T00:00:00Z", "--until", "2026-12-02T00:00:00Z",
        "--limit", "10", "--yes", "-o", "ids",
    )  # fmt: skip
    assert (code, out) == (0, "01N1\n01N2\n")
    assert sent(fake, "POST") == [
        (
            "/events/replay",
            {"trigger_id": "01T", "status": "failure", "since": "2026-12-01T00:00:00Z",
             "until": "2026-12-02T00:00:00Z", "limit": 10},
        )
    ]  # fmt: skip

    code, _, err = run("events", "replay", "--bulk", "--yes")
    assert code == commands.USAGE
    assert "at least one of --trigger-id" in err
    assert run("events", "replay", "01E", "--status", "failure")[0] == commands.USAGE
    assert run("events", "replay", "01E", "--bulk", "--status", "failure")[0] == commands.USAGE
    assert run("events", "replay")[0] == commands.USAGE


def test_bulk_replay_dry_run_counts_and_replays_nothing(fake: FakeApi) -> None:
    newer = {**EVENT, "id": "01E2", "fired_at": "2026-12-01T10:00:02Z"}
    older = {**EVENT, "id": "01E1", "fired_at": "2026-12-01T10:00:01Z"}
    fake.answers[("GET", "/events")] = [
        {"items": [newer, older], "next_cursor": None},  # active
        {"items": [], "next_cursor": None},  # archived
    ]
    code, out, err = run(
        "events", "replay", "--bulk", "--trigger-id", "01T", "--limit", "1", "--dry-run",
        "-o", "ids",
    )  # fmt: skip
    assert (code, out) == (0, "01E1\n")  # the oldest first, as the replay takes them
    assert "1 event(s) would be replayed" in err
    assert sent(fake, "POST") == []
    views = [q["view"] for m, p, q, _ in fake.calls if p == "/events"]
    assert views == ["active", "archived"]


def test_pin_until_is_the_count_time_unless_an_earlier_one_was_given() -> None:
    at = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    pinned = "2026-12-01T10:00:00.123456Z"
    assert cmd_events.pin_until({"status": "failure"}, at) == {
        "status": "failure",
        "until": pinned,
    }
    assert cmd_events.pin_until({"until": "2027-01-01T00:00:00Z"}, at)["until"] == pinned
    earlier = {"until": "2026-11-30T00:00:00+01:00"}
    assert cmd_events.pin_until(earlier, at) == earlier
    assert cmd_events.pin_until({"until": "yesterday"}, at) == {"until": "yesterday"}


def test_bulk_replay_on_a_terminal_replays_what_it_counted(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events fired while the question waits are after the count: the replay must stop
    # where the count did, so `until` is pinned to the moment of the count.
    counted_at = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(common, "interactive", lambda: True)
    monkeypatch.setattr(common, "now", lambda: counted_at)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    fake.answers[("GET", "/events")] = [
        {"items": [{**EVENT, "fired_at": "2026-12-01T09:00:00Z"}], "next_cursor": None},
        {"items": [], "next_cursor": None},
    ]
    fake.answers[("POST", "/events/replay")] = {"event_ids": ["01N1"]}
    code, out, err = run("events", "replay", "--bulk", "--status", "failure")
    assert (code, out) == (0, "replayed 1 event(s) as:\n01N1\n"), err
    assert "Replay 1 matching event(s), oldest first" in err
    pinned = "2026-12-01T10:00:00.000000Z"
    assert [q["until"] for m, p, q, _ in fake.calls if p == "/events"] == [pinned, pinned]
    assert sent(fake, "POST") == [("/events/replay", {"status": "failure", "until": pinned})]


def test_bulk_replay_past_the_count_cap_says_at_least_and_lists_nothing(
    fake: FakeApi,
) -> None:
    many = [
        {**EVENT, "id": f"01E{n:05}", "fired_at": f"2026-12-01T10:{n // 600:02}:00Z"}
        for n in range(cmd_events.COUNT_CAP)
    ]
    fake.answers[("GET", "/events")] = {"items": many, "next_cursor": "more"}
    code, out, err = run(
        "events", "replay", "--bulk", "--status", "failure", "--dry-run", "-o", "ids"
    )
    assert (code, out) == (0, "")  # the oldest (which the replay takes) were not reached
    assert f"at least {cmd_events.COUNT_CAP} events match" in err
    assert f"100 of at least {cmd_events.COUNT_CAP} event(s) would be replayed" in err
    shown = json.loads(
        run("events", "replay", "--bulk", "--status", "failure", "--dry-run", "-o", "json")[1]
    )
    assert shown == {"items": [], "matching": cmd_events.COUNT_CAP, "complete": False}
    assert sent(fake, "POST") == []


def test_bulk_replay_with_nothing_to_replay_says_so(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.answers[("POST", "/events/replay")] = {"event_ids": []}
    assert run("events", "replay", "--bulk", "--status", "failure", "--yes") == (
        0,
        "nothing to replay\n",
        "",
    )
    # On a terminal with nothing counted: no question, no replay.
    monkeypatch.setattr(common, "interactive", lambda: True)
    fake.calls.clear()
    fake.answers[("GET", "/events")] = {"items": [], "next_cursor": None}
    code, out, err = run("events", "replay", "--bulk", "--status", "failure")
    assert (code, out) == (0, "")
    assert "nothing to replay" in err
    assert sent(fake, "POST") == []


def test_event_tables_show_trigger_names_asked_once(fake: FakeApi) -> None:
    items = [
        {**EVENT, "id": "01E1", "trigger_id": "01T"},
        {**EVENT, "id": "01E2", "trigger_id": "01T"},
        {**EVENT, "id": "01E3", "trigger_id": "01GONE"},
    ]
    fake.answers[("GET", "/events")] = {"items": items, "next_cursor": None}
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    fake.answers[("GET", "/triggers/01GONE")] = ApiError(404, "GET", "/triggers/01GONE")
    code, out, _ = run("events", "list")
    assert code == 0
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert rows == [["01E1", "orders"], ["01E2", "orders"], ["01E3", "01GONE"]]
    asked = [p for m, p, _, _ in fake.calls if p.startswith("/triggers/")]
    assert asked == ["/triggers/01T", "/triggers/01GONE"]
    # -o json is the API's page: no lookups at all
    fake.calls.clear()
    assert json.loads(run("events", "list", "--json")[1])["items"] == items
    assert [p for _, p, _, _ in fake.calls] == ["/events"]


def test_output_formats_and_the_json_alias(fake: FakeApi) -> None:
    page = {"items": [{"id": "01A", "name": "a"}, {"id": "01B", "name": "b"}], "next_cursor": None}
    fake.answers[("GET", "/triggers")] = page
    assert run("triggers", "list", "-o", "ids")[1] == "01A\n01B\n"
    assert yaml.safe_load(run("triggers", "list", "--output", "yaml")[1]) == page
    assert json.loads(run("triggers", "--json", "list")[1]) == page
    # an explicit --output wins over --json
    assert run("triggers", "list", "--json", "-o", "ids")[1] == "01A\n01B\n"


def test_events_get_json_carries_the_attempts(fake: FakeApi) -> None:
    attempt = {**ATTEMPTS["items"][0], "request": {"method": "POST", "url": "http://x.test/h",
               "headers": {"webhook-id": "msg_1"}, "body": "{}"},
               "response_headers": {"content-type": "text/plain"}}  # fmt: skip
    fake.answers[("GET", "/events/01E")] = EVENT
    fake.answers[("GET", "/events/01E/attempts")] = {"items": [attempt]}
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    shown = json.loads(run("events", "get", "01E", "-o", "json")[1])
    assert shown == {**EVENT, "delivery_attempts": [attempt]}
    table = run("events", "get", "01E")[1]
    assert "trigger:          orders (01T, ?)" in table
    assert "POST http://x.test/h" in table
    assert "1 header, text/plain" in table
    attempts = run("events", "attempts", "01E")[1].splitlines()
    assert attempts[0].split()[:4] == ["ATTEMPT", "STARTED", "(UTC)", "DURATION"] or attempts[
        0
    ].startswith("ATTEMPT")
    assert attempts[1].split()[0] == "1"


def test_tail_prints_one_line_per_message(fake: FakeApi) -> None:
    first = {**EVENT, "fired_at": "2026-12-01T10:00:00Z"}
    second = {**first, "status": "success", "attempts": 1, "last_status_code": 200}
    fake.lines = [
        "retry: 3000",
        "",
        ": keep-alive",
        "",
        "event: event",
        "id: 01E",
        f"data: {json.dumps(first)}",
        "",
        "event: event",
        "id: 01E",
        f"data: {json.dumps(second)}",
        "",
    ]
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    code, out, err = run("events", "tail", "--trigger-id", "01T", "--status", "success")
    assert code == 130  # Ctrl-C
    assert err == "following new events (Ctrl-C stops)\n"
    lines = out.splitlines()
    assert [line.split()[2:] for line in lines] == [
        ["01E", "orders", "manual-test", "pending", "-", "(0", "attempts)"],
        ["01E", "orders", "manual-test", "success", "200", "(1", "attempt)"],
    ]
    assert fake.calls[0] == (
        "STREAM", "/events/stream", {"trigger_id": "01T", "status": "success", "source": None},
        None,
    )  # fmt: skip

    code, out, _ = run("events", "tail", "-o", "json")
    assert [json.loads(line) for line in out.splitlines()] == [first, second]


def test_tail_falls_back_to_polling_on_an_older_server(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.stream_error = ApiError(404, "GET", "/api/v1/events/stream")
    old = {**EVENT, "id": "01OLD", "status": "success", "fired_at": "2026-12-01T10:00:00Z"}
    new = {**EVENT, "id": "01NEW", "fired_at": "2026-12-01T10:00:05Z"}
    done = {**new, "status": "success"}
    fake.answers[("GET", "/events")] = [
        {"items": [old], "next_cursor": None},  # the baseline: shown never
        {"items": [new, old], "next_cursor": None},
        {"items": [done], "next_cursor": None},
        {"items": [done], "next_cursor": None},  # nothing new: nothing shown
    ]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) > 3:
            raise KeyboardInterrupt  # as Ctrl-C ends a tail

    monkeypatch.setattr(time, "sleep", sleep)
    code, out, err = run("events", "tail", "-o", "ids")
    assert code == 130
    assert out == "01NEW\n01NEW\n"  # new, then its change to success; the old one never
    assert "this server has no event stream" in err
    assert pauses == [2.0] * 4
    assert [q for m, p, q, _ in fake.calls if p == "/events"][1] == {
        "since": "2026-12-01T10:00:00Z", "limit": 500,
    }  # fmt: skip


def test_poll_events_yields_new_events_and_status_changes(fake: FakeApi) -> None:
    old = {**EVENT, "id": "01OLD", "status": "success", "fired_at": "2026-12-01T10:00:00Z"}
    new = {**EVENT, "id": "01NEW", "fired_at": "2026-12-01T10:00:05Z"}
    done = {**new, "status": "success"}
    fake.answers[("GET", "/events")] = [
        {"items": [old], "next_cursor": None},
        {"items": [new, old], "next_cursor": None},
        {"items": [done], "next_cursor": None},
    ]
    got = itertools.islice(cmd_events.poll_events(fake, {}, sleep=lambda s: None), 2)
    assert [(e["id"], e["status"]) for e in got] == [("01NEW", "pending"), ("01NEW", "success")]
    queries = [q for _, p, q, _ in fake.calls if p == "/events"]
    # after the new event, the next look starts from it (still under way at the time)
    assert queries[2]["since"] == "2026-12-01T10:00:05Z"


def test_stats_and_aggregate(fake: FakeApi) -> None:
    fake.answers[("GET", "/stats")] = {
        "as_of": "2026-12-01T10:00:00Z",
        "triggers": {"by_type": {"webhook": {"active": 2}}, "total": 2},
        "events": {"active": 12345, "archived": 0},
        "latest_failures": [],
    }
    out = run("stats")[1]
    assert "triggers.by_type.webhook.active  2" in out
    assert "events.active                    12,345" in out
    fake.answers[("GET", "/stats/series")] = {"points": []}
    run("stats", "--series", "48h", "--trigger-id", "01T")
    assert fake.calls[-1][1:3] == ("/stats/series", {"range": "48h", "trigger_id": "01T"})
    assert run("stats", "--trigger-id", "01T")[0] == commands.USAGE

    fake.answers[("GET", "/events")] = {
        "items": [
            {
                "trigger_id": "01T",
                "trigger_type": "webhook",
                "counts": {"pending": 0, "retrying": 0, "success": 3, "failure": 1, "total": 4},
                "last_fired_at": "2026-12-01T10:00:00Z",
            }
        ],
        "next_cursor": None,
    }
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "orders"}
    lines = run("aggregate")[1].splitlines()
    assert lines[1].split()[:8] == ["orders", "webhook", "0", "0", "3", "1", "4", "25.0%"]
    assert [q for m, p, q, _ in fake.calls if p == "/events"][-1] == {"aggregate": "trigger"}
    assert run("aggregate", "-o", "ids")[1] == "01T\n"


def test_sse_parser() -> None:
    parser = sse.Parser()
    lines = [
        "retry: 3000",
        "",
        ": keep-alive",
        "",
        "event: event",
        "id: 7",
        "data: {",
        "data: }",
        "",
    ]
    messages = [m for m in map(parser.feed, lines) if m is not None]
    assert messages == [sse.Message("event", "{\n}", "7")]
    assert parser.last_id == "7"
    assert parser.feed("data:x") is None
    assert parser.feed("") == sse.Message("message", "x", None)


def test_server_text_on_stderr_cannot_drive_the_terminal(
    fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy's page, or a problem echoing what someone sent, is shown escaped.
    fake.answers[("GET", "/triggers")] = ApiError(
        502, "GET", "/api/v1/triggers", text="bad gateway\x1b]0;owned\x07\x1b[2J"
    )
    code, _, err = run("triggers", "list")
    assert code == commands.SERVER
    assert err == "eventtrigger: 502: bad gateway\\x1b]0;owned\\x07\\x1b[2J\n"
    # A trigger's name in a question, too.
    monkeypatch.setattr(common, "interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    fake.answers[("GET", "/triggers/01T")] = {"id": "01T", "name": "ord\x1b[8mers"}
    _, _, err = run("triggers", "delete", "01T")
    assert err.startswith("Delete trigger ord\\x1b[8mers (01T)? [y/N] ")
