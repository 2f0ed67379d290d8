"""The CLI's tables and detail views: aligned columns, local times, human durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from eventtrigger_client import render

NOW = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1), "CET")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0094, "9ms"),
        (0.35, "350ms"),
        (4.24, "4.2s"),
        (4.0, "4s"),
        (42, "42s"),
        (270, "4m 30s"),
        (300, "5m"),
        (7500, "2h 5m"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h"),
        (-90, "1m 30s"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert render.human_duration(seconds) == text


def test_times_are_shown_in_the_given_zone_with_a_relative_part() -> None:
    assert render.local_time("2026-12-01T15:04:05Z", UTC) == "2026-12-01 15:04:05"
    assert render.local_time("2026-12-01T15:04:05.5+00:00", PARIS) == "2026-12-01 16:04:05"
    assert render.local_time(None, UTC) == "-"
    assert render.relative("2026-12-01T15:04:30Z", NOW) == "in 4m 30s"
    assert render.relative("2026-12-01T14:57:00Z", NOW) == "3m ago"
    assert render.relative("2026-12-01T15:00:00.2Z", NOW) == "now"
    assert render.when("2026-12-01T15:00:42Z", NOW, PARIS) == "2026-12-01 16:00:42 (in 42s)"
    assert render.zone_name(PARIS, NOW) == "CET"


def test_table_aligns_columns_without_trailing_blanks() -> None:
    text = render.table(["A", "LONGER"], [["xyz", "1"], ["q", ""]])
    assert text.splitlines() == ["A    LONGER", "xyz  1", "q"]


def test_triggers_table() -> None:
    triggers: list[dict[str, Any]] = [
        {
            "id": "01AAA",
            "name": "tick",
            "type": "cron_scheduled",
            "status": "active",
            "config": {"cron": "*/10 * * * * *", "timezone": "Europe/Paris"},
            "next_fire_at": "2026-12-01T15:00:10Z",
        },
        {
            "id": "01BBB",
            "name": "a name\nthat goes on " + "and on " * 10,
            "type": "webhook",
            "status": "paused",
            "config": {},
        },
        {
            "id": "01CCC",
            "name": "once",
            "type": "time_scheduled",
            "status": "completed",
            "config": {"run_at": "2026-12-01T14:00:00Z"},
            "next_fire_at": None,
        },
        {"id": "01DDD", "name": "n", "type": "interval_scheduled", "status": "active",
         "config": {"every": "5m"}, "next_fire_at": "2026-12-01T15:05:00Z"},
    ]  # fmt: skip
    lines = render.triggers_table(triggers, NOW, UTC).splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE", "STATUS", "SCHEDULE", "NEXT", "FIRE", "(UTC)"]
    assert lines[1].split("  ")[0] == "01AAA"
    assert "cron */10 * * * * * Europe/Paris" in lines[1]
    assert lines[1].endswith("2026-12-01 15:00:10 (in 10s)")
    # The long, multi-line name is cut to one line of at most NAME_WIDTH characters.
    assert "a name that goes on and on" in lines[2]
    assert "…" in lines[2]
    assert "\n" not in lines[2]
    assert "at 2026-12-01 14:00:00" in lines[3]
    assert "every 5m" in lines[4]
    # Every column starts at the same offset on every line.
    status_at = lines[0].index("STATUS")
    assert [line[status_at:].split()[0] for line in lines[1:]] == [
        "active",
        "paused",
        "completed",
        "active",
    ]
    assert render.triggers_table([], NOW, UTC) == "No triggers."


def test_events_table_and_latency() -> None:
    events: list[dict[str, Any]] = [
        {
            "id": "01EEE",
            "trigger_id": "01AAA",
            "source": "scheduled",
            "is_test_run": False,
            "status": "success",
            "attempts": 2,
            "last_status_code": 200,
            "scheduled_at": "2026-12-01T14:58:00Z",
            "fired_at": "2026-12-01T14:58:00.010Z",
            "delivered_at": "2026-12-01T14:58:02.510Z",
        },
        {
            "id": "01FFF",
            "trigger_id": None,
            "source": "api",
            "is_test_run": True,
            "status": "retrying",
            "attempts": 1,
            "last_status_code": None,
            "scheduled_at": "2026-12-01T14:59:00Z",
            "fired_at": "2026-12-01T14:59:00Z",
            "delivered_at": None,
        },
    ]
    lines = render.events_table(events, NOW, UTC).splitlines()
    assert lines[0].split()[:6] == ["ID", "TRIGGER", "SOURCE", "STATUS", "ATTEMPTS", "CODE"]
    assert lines[1].split() == [
        "01EEE", "01AAA", "scheduled", "success", "2", "200",
        "2026-12-01", "14:58:00", "(2m", "ago)", "2.5s",
    ]  # fmt: skip
    assert lines[2].split() == [
        "01FFF", "-", "api", "(test)", "retrying", "1", "-",
        "2026-12-01", "14:59:00", "(1m", "ago)", "-",
    ]  # fmt: skip
    assert render.events_table([], NOW, UTC) == "No events."


def test_detail_views_list_fields_then_json() -> None:
    trigger = {
        "id": "01AAA",
        "name": "tick",
        "type": "interval_scheduled",
        "status": "paused",
        "paused_reason": "5 consecutive failures",
        "config": {"every": "5m", "payload": {"a": 1}},
        "signing_secret": "whsec_x",
        "next_fire_at": None,
        "created_at": "2026-12-01T14:00:00Z",
        "updated_at": "2026-12-01T14:30:00Z",
    }
    text = render.trigger_detail(trigger, NOW, UTC)
    assert "paused reason:  5 consecutive failures" in text
    assert "next fire:      -" in text
    assert "created:        2026-12-01 14:00:00 (1h ago)" in text
    assert text.endswith(
        'config:\n  {\n    "every": "5m",\n    "payload": {\n      "a": 1\n    }\n  }'
    )

    event = {"id": "01EEE", "trigger_id": "01AAA", "trigger_type": "webhook",
             "source": "replay", "replay_of": "01DDD", "is_test_run": False,
             "status": "failure", "attempts": 5, "last_status_code": 503,
             "last_error": "HTTP 503", "payload": None}  # fmt: skip
    text = render.event_detail(event, NOW, UTC)
    assert "trigger:          01AAA (webhook)" in text
    assert "replay of:        01DDD" in text
    assert "last error:       HTTP 503" in text
    assert "delivered:        -" in text
    assert text.endswith("payload:\n  null")


def test_event_tables_show_names_and_the_id_of_a_gone_trigger() -> None:
    events = [
        {"id": "01E1", "trigger_id": "01AAA", "source": "api", "status": "success"},
        {"id": "01E2", "trigger_id": "01GONE", "source": "api", "status": "success"},
    ]
    lines = render.events_table(events, NOW, UTC, {"01AAA": "orders"}).splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [["01E1", "orders"], ["01E2", "01GONE"]]
    trigger = {"id": "01E1", "trigger_id": "01AAA", "trigger_type": "webhook", "payload": None}
    assert "trigger:          orders (01AAA, webhook)" in render.event_detail(
        trigger, NOW, UTC, "orders"
    )


ATTEMPT = {
    "attempt": 1,
    "started_at": "2026-12-01T14:59:00Z",
    "duration_ms": 1500,
    "status_code": 503,
    "error": "HTTP 503",
    "next_attempt_at": "2026-12-01T15:00:02Z",
}


def test_attempts_table_with_and_without_the_request_and_response_headers() -> None:
    lines = render.attempts_table([ATTEMPT], NOW, UTC).splitlines()
    assert lines[0].split() == [
        "ATTEMPT", "STARTED", "(UTC)", "DURATION", "CODE", "ERROR", "NEXT", "ATTEMPT",
    ]  # fmt: skip
    assert lines[1].split() == [
        "1", "2026-12-01", "14:59:00", "1.5s", "503", "HTTP", "503",
        "2026-12-01", "15:00:02", "(in", "2s)",
    ]  # fmt: skip
    detailed = {
        **ATTEMPT,
        "request": {"method": "POST", "url": "https://x.test/hook", "headers": {}, "body": ""},
        "response_headers": {"Content-Type": "text/html", "Retry-After": "1"},
    }
    lines = render.attempts_table([detailed], NOW, UTC).splitlines()
    assert lines[0].split()[-3:] == ["SENT", "RESPONSE", "HEADERS"]
    assert lines[1].endswith("  POST https://x.test/hook  2 headers, text/html")
    assert render.attempts_table([], NOW, UTC) == "No attempts yet."


def test_outcome_says_the_status_then_the_attempts() -> None:
    event = {
        "id": "01E",
        "trigger_id": "01AAA",
        "status": "failure",
        "attempts": 1,
        "last_status_code": 503,
        "last_error": "HTTP 503",
    }
    lines = render.outcome(event, [ATTEMPT], "orders", NOW, UTC).splitlines()
    assert lines[0] == (
        "event 01E for orders (01AAA): failure after 1 attempt, last status code 503"
    )
    assert lines[1] == "last error: HTTP 503"
    assert lines[2].startswith("ATTEMPT")
    test_run = {**event, "trigger_id": None, "status": "success", "last_error": None}
    assert (
        render.outcome(test_run, [], None, NOW, UTC)
        .splitlines()[0]
        .startswith("event 01E for test run: success after 1 attempt")
    )


def test_tail_line() -> None:
    event = {
        "id": "01E",
        "trigger_id": "01AAA",
        "source": "api",
        "status": "retrying",
        "attempts": 2,
        "last_status_code": 500,
        "fired_at": "2026-12-01T14:00:00Z",
    }
    assert render.tail_line(event, "orders", PARIS) == (
        "2026-12-01 15:00:00  01E  orders  api  retrying  500 (2 attempts)"
    )
    assert render.tail_line({**event, "trigger_id": None}, None, UTC).split()[3] == "(test"


def test_stats_view_and_aggregate_table() -> None:
    stats = {
        "as_of": "2026-12-01T14:59:58Z",
        "triggers": {"by_type": {"webhook": {"active": 1200}}, "total": 1200},
        "fire_lateness_seconds": {"p50": 0.0125, "p99": None},
        "latest_failures": [
            {"id": "01E", "trigger_id": "01AAA", "last_status_code": 500, "last_error": "boom",
             "fired_at": "2026-12-01T14:00:00Z"},
        ],
    }  # fmt: skip
    text = render.stats_view(stats, NOW, UTC, {"01AAA": "orders"})
    assert text.splitlines()[0] == "as of 2026-12-01 14:59:58 (2s ago)"
    assert "triggers.by_type.webhook.active  1,200" in text
    assert "fire_lateness_seconds.p50        0.013" in text  # 3 decimals at most
    assert "fire_lateness_seconds.p99        -" in text
    assert "01E    orders   500   boom   2026-12-01 14:00:00" in text

    item = {
        "trigger_id": "01AAA",
        "trigger_type": "cron_scheduled",
        "counts": {"pending": 0, "retrying": 1, "success": 2998, "failure": 1, "total": 3000},
        "last_fired_at": "2026-12-01T14:59:00Z",
    }
    lines = render.aggregate_table([item], NOW, UTC, {"01AAA": "nightly"}).splitlines()
    assert lines[0].split()[:3] == ["TRIGGER", "TYPE", "PENDING"]
    assert lines[1].split()[:8] == [
        "nightly", "cron_scheduled", "0", "1", "2,998", "1", "3,000", "0.0%",
    ]  # fmt: skip


HOSTILE = "boom\x1b[2J\x1b]0;owned\x07\r\nfake row\x9b\u202eevil\x7f"


def test_printable_shows_what_a_terminal_would_act_on() -> None:
    assert render.printable(HOSTILE) == (
        "boom\\x1b[2J\\x1b]0;owned\\x07\\x0d\\x0afake row\\x9b\\u202eevil\\x7f"
    )
    # A whole view keeps the newlines between its rows, nothing else.
    assert render.printable("a\tb\nc\x1b", lines=True) == "a\\x09b\nc\\x1b"
    assert render.printable("naïve – 東京 ✓") == "naïve – 東京 ✓"


def test_receiver_text_cannot_drive_the_terminal_in_tables_and_views() -> None:
    attempt = {**ATTEMPT, "error": HOSTILE}
    table = render.attempts_table([attempt], NOW, UTC)
    assert len(table.splitlines()) == 2  # still one row
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table
    assert "boom\\x1b[2J" in table
    event = {
        "id": "01E",
        "trigger_id": "01AAA",
        "status": "failure",
        "attempts": 1,
        "last_status_code": 500,
        "last_error": HOSTILE,
        "payload": {},
    }
    for view in (
        render.outcome(event, [attempt], "orders", NOW, UTC),
        render.event_detail(event, NOW, UTC, "orders", [attempt]),
    ):
        assert not any(c in view for c in "\x1b\x07\r\x9b\u202e\x7f")
        assert "fake row" not in [line.strip() for line in view.splitlines()]
    assert "\x1b" not in render.tail_line({**event, "id": "01E\x1b[1A"}, "x\x1b", UTC)
