"""Tables and detail views for people: aligned columns, local times, human durations.

Pure functions of the API's JSON plus `now` and a time zone, so tests can pin both.
Scripts should use `--json` instead: these layouts may change, the API's JSON does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

NAME_WIDTH = 40  # longer names are cut with an ellipsis so one row stays one line
# What a terminal would act on rather than show: C0 and C1 controls (ESC starts escape
# sequences that can move the cursor, retitle the window or fake output), DEL, line and
# paragraph separators, and the bidi overrides that reorder what is shown. Receivers'
# error texts and users' names reach tables, so each is shown as a visible \xNN or \uNNNN.
_UNSAFE = "\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_LINE = re.compile(f"[\n{_UNSAFE}]")
_UNSAFE_IN_TEXT = re.compile(f"[{_UNSAFE}]")


def parse_time(text: object) -> datetime | None:
    """An API time (RFC 3339, `Z` or offset) as an aware datetime; None when absent/bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def local_time(text: object, tz: tzinfo | None = None) -> str:
    """`2026-12-01 16:09:21` in `tz` (None: this machine's zone); `-` when absent."""
    value = parse_time(text)
    if value is None:
        return "-" if text is None else str(text)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def zone_name(tz: tzinfo | None, now: datetime) -> str:
    """The abbreviation of the zone times are shown in (e.g. `UTC`, `CET`), for headers."""
    return now.astimezone(tz).tzname() or "local"


def human_duration(seconds: float) -> str:
    """`350ms`, `4.2s`, `42s`, `4m 30s`, `2h 5m`, `3d 4h`: two units at most, for reading."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + "s"
    whole = round(seconds)
    for big, big_unit, small, small_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "m"),
        (60, "m", 1, "s"),
    ):
        if whole >= big:
            high, rest = divmod(whole, big)
            low = rest // small
            return f"{high}{big_unit} {low}{small_unit}" if low else f"{high}{big_unit}"
    return f"{whole}s"


def relative(text: object, now: datetime) -> str:
    """`in 4m 30s` or `3m ago` from `now`; empty when the time is absent."""
    value = parse_time(text)
    if value is None:
        return ""
    # Whole seconds: a countdown to the tenth of a second is noise in a table.
    delta = round((value - now).total_seconds())
    if delta == 0:
        return "now"
    return f"in {human_duration(delta)}" if delta > 0 else f"{human_duration(delta)} ago"


def when(text: object, now: datetime, tz: tzinfo | None) -> str:
    """Local time followed by the relative time: `2026-12-01 16:09:21 (in 4m)`."""
    shown = local_time(text, tz)
    rel = relative(text, now)
    return f"{shown} ({rel})" if rel else shown


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    lines = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with the characters a terminal would act on shown as escapes (\\x1b,
    \\u202e); newlines too unless `lines` (a whole view, whose rows they separate)."""
    unsafe = _UNSAFE_IN_TEXT if lines else _UNSAFE_IN_LINE
    return unsafe.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _cut(text: object, width: int = NAME_WIDTH) -> str:
    value = "" if text is None else str(text)
    value = " ".join(value.split())  # a newline in a name must not break the row
    value = printable(value)
    return value if len(value) <= width else value[: width - 1] + "…"


def schedule(trigger: dict[str, Any], tz: tzinfo | None) -> str:
    """What makes the trigger fire, in a few words."""
    config = trigger.get("config") or {}
    kind = trigger.get("type")
    if kind == "cron_scheduled":
        return f"cron {config.get('cron', '?')} {config.get('timezone', 'UTC')}"
    if kind == "interval_scheduled":
        return f"every {config.get('every', '?')}"
    if kind == "time_scheduled":
        return f"at {local_time(config.get('run_at'), tz)}"
    if kind == "webhook":
        return "on webhook call"
    return "-"


def triggers_table(items: Sequence[dict[str, Any]], now: datetime, tz: tzinfo | None) -> str:
    if not items:
        return "No triggers."
    headers = ["ID", "NAME", "TYPE", "STATUS", "SCHEDULE", f"NEXT FIRE ({zone_name(tz, now)})"]
    rows = [
        [
            str(t.get("id", "")),
            _cut(t.get("name")),
            str(t.get("type", "")),
            str(t.get("status", "")),
            schedule(t, tz),
            when(t.get("next_fire_at"), now, tz) if t.get("next_fire_at") else "-",
        ]
        for t in items
    ]
    return table(headers, rows)


def latency(event: dict[str, Any]) -> str:
    """Scheduled time to delivery, as people judge a trigger's promptness; `-` if none."""
    start = parse_time(event.get("scheduled_at"))
    end = parse_time(event.get("delivered_at"))
    if start is None or end is None:
        return "-"
    return human_duration(max(0.0, (end - start).total_seconds()))


def trigger_label(trigger_id: object, names: Mapping[str, str] | None) -> str:
    """The trigger's name when known, else its id (a deleted trigger); `-` for none."""
    if not isinstance(trigger_id, str) or not trigger_id:
        return "-"
    return _cut((names or {}).get(trigger_id) or trigger_id, 32)


def events_table(
    items: Sequence[dict[str, Any]],
    now: datetime,
    tz: tzinfo | None,
    names: Mapping[str, str] | None = None,
) -> str:
    """Events with their trigger's NAME (`names`: id -> name; the id when not there)."""
    if not items:
        return "No events."
    headers = [
        "ID",
        "TRIGGER",
        "SOURCE",
        "STATUS",
        "ATTEMPTS",
        "CODE",
        f"FIRED ({zone_name(tz, now)})",
        "DELIVERED IN",
    ]
    rows = []
    for e in items:
        source = str(e.get("source", ""))
        if e.get("is_test_run") and source != "manual-test":
            source += " (test)"
        code = e.get("last_status_code")
        rows.append(
            [
                str(e.get("id", "")),
                trigger_label(e.get("trigger_id"), names),
                source,
                str(e.get("status", "")),
                str(e.get("attempts", "")),
                "-" if code is None else str(code),
                when(e.get("fired_at"), now, tz),
                latency(e),
            ]
        )
    return table(headers, rows)


def _json_block(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return "\n".join("  " + line for line in text.splitlines())


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs) + 1
    # Each value is one line: a newline in a receiver's error text must not fake a field.
    return "\n".join(f"{(k + ':').ljust(width)} {printable(v)}".rstrip() for k, v in pairs)


def trigger_detail(trigger: dict[str, Any], now: datetime, tz: tzinfo | None) -> str:
    """One trigger as `field: value` lines, then its config as indented JSON."""
    pairs = [
        ("id", str(trigger.get("id", ""))),
        ("name", str(trigger.get("name", ""))),
        ("type", str(trigger.get("type", ""))),
        ("status", str(trigger.get("status", ""))),
    ]
    if trigger.get("paused_reason"):
        pairs.append(("paused reason", str(trigger["paused_reason"])))
    pairs.append(("schedule", schedule(trigger, tz)))
    if "next_fire_at" in trigger:
        next_fire = trigger["next_fire_at"]
        pairs.append(("next fire", when(next_fire, now, tz) if next_fire else "-"))
    if trigger.get("webhook_url"):
        pairs.append(("webhook url", str(trigger["webhook_url"])))
    if trigger.get("signing_secret"):
        pairs.append(("signing secret", str(trigger["signing_secret"])))
    pairs += [
        ("created", when(trigger.get("created_at"), now, tz)),
        ("updated", when(trigger.get("updated_at"), now, tz)),
    ]
    return _fields(pairs) + "\nconfig:\n" + _json_block(trigger.get("config"))


def event_detail(
    event: dict[str, Any],
    now: datetime,
    tz: tzinfo | None,
    name: str | None = None,
    attempts: Sequence[dict[str, Any]] | None = None,
) -> str:
    """One event as `field: value` lines, then its payload as indented JSON, then its
    delivery attempts (when given) as a table."""
    code = event.get("last_status_code")
    trigger_id = event.get("trigger_id") or "-"
    kind = event.get("trigger_type", "?")
    shown = f"{name} ({trigger_id}, {kind})" if name else f"{trigger_id} ({kind})"
    pairs = [
        ("id", str(event.get("id", ""))),
        ("trigger", shown),
        ("source", str(event.get("source", ""))),
        ("test run", "yes" if event.get("is_test_run") else "no"),
    ]
    if event.get("replay_of"):
        pairs.append(("replay of", str(event["replay_of"])))
    if event.get("note"):
        pairs.append(("note", str(event["note"])))
    pairs += [
        ("status", str(event.get("status", ""))),
        ("attempts", str(event.get("attempts", ""))),
        ("last status code", "-" if code is None else str(code)),
        ("last error", str(event.get("last_error") or "-")),
        ("scheduled", when(event.get("scheduled_at"), now, tz)),
        ("fired", when(event.get("fired_at"), now, tz)),
        ("delivered", when(event.get("delivered_at"), now, tz)),
        ("delivered in", latency(event)),
        ("retention", str(event.get("retention", ""))),
    ]
    if isinstance(event.get("request"), dict):  # servers that report the request sent
        pairs.append(("request", _sent(event["request"])))
    text = _fields(pairs) + "\npayload:\n" + _json_block(event.get("payload"))
    if attempts is not None:
        text += "\ndelivery attempts:\n" + _indent(attempts_table(attempts, now, tz))
    return text


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def _sent(request: object) -> str:
    """An attempt's request in short: `POST https://host/path` (the JSON output has all)."""
    if not isinstance(request, dict):
        return "-"
    method = request.get("method") or "?"
    return _cut(f"{method} {request.get('url') or '?'}", 48)


def _response_headers(headers: object) -> str:
    if not isinstance(headers, dict) or not headers:
        return "-"
    lowered = {str(k).lower(): v for k, v in headers.items()}
    kind = lowered.get("content-type")
    count = f"{len(headers)} header{'s' if len(headers) != 1 else ''}"
    return f"{count}, {_cut(kind, 24)}" if kind else count


def attempts_table(items: Sequence[dict[str, Any]], now: datetime, tz: tzinfo | None) -> str:
    """`events attempts`: one row per delivery attempt, oldest first. The request sent and
    the response's headers, when the server reports them, appear in short."""
    if not items:
        return "No attempts yet."
    headers = [
        "ATTEMPT",
        f"STARTED ({zone_name(tz, now)})",
        "DURATION",
        "CODE",
        "ERROR",
        "NEXT ATTEMPT",
    ]
    detailed = any("request" in a or "response_headers" in a for a in items)
    if detailed:
        headers += ["SENT", "RESPONSE HEADERS"]
    rows = []
    for a in items:
        code = a.get("status_code")
        duration = a.get("duration_ms")
        row = [
            str(a.get("attempt", "")),
            local_time(a.get("started_at"), tz),
            "-" if not isinstance(duration, int | float) else human_duration(duration / 1000),
            "-" if code is None else str(code),
            _cut(a.get("error") or "-", 48),
            when(a.get("next_attempt_at"), now, tz) if a.get("next_attempt_at") else "-",
        ]
        if detailed:
            row += [_sent(a.get("request")), _response_headers(a.get("response_headers"))]
        rows.append(row)
    return table(headers, rows)


def outcome(
    event: dict[str, Any],
    attempts: Sequence[dict[str, Any]],
    name: str | None,
    now: datetime,
    tz: tzinfo | None,
) -> str:
    """What `--wait` reports: the event's final status in one line, then its attempts."""
    count = len(attempts) or int(event.get("attempts") or 0)
    what = f"{name} ({event.get('trigger_id')})" if name else "test run"
    if not name and event.get("trigger_id"):
        what = str(event["trigger_id"])
    code = event.get("last_status_code")
    head = (
        f"event {event.get('id')} for {what}: {event.get('status')} after "
        f"{count} attempt{'s' if count != 1 else ''}"
        + (f", last status code {code}" if code is not None else "")
        + (f", in {latency(event)}" if latency(event) != "-" else "")
    )
    if event.get("status") == "failure" and event.get("last_error"):
        head += f"\nlast error: {printable(str(event['last_error']))}"
    return head + "\n" + attempts_table(attempts, now, tz)


def tail_line(event: dict[str, Any], name: str | None, tz: tzinfo | None) -> str:
    """`events tail`: one line per event message, for following by eye."""
    code = event.get("last_status_code")
    count = event.get("attempts")
    source = str(event.get("source", ""))
    if event.get("is_test_run") and source != "manual-test":
        source += " (test)"
    fired = parse_time(event.get("fired_at")) or parse_time(event.get("updated_at"))
    shown = "-" if fired is None else fired.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    trigger = name or event.get("trigger_id") or "(test run)"
    line = "  ".join(
        [
            shown,
            str(event.get("id", "")),
            _cut(trigger, 32),
            source,
            str(event.get("status", "")),
            f"{'-' if code is None else code} ({count} attempt{'s' if count != 1 else ''})",
        ]
    )
    return printable(line)


def _flat(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict) and value:
        pairs: list[tuple[str, str]] = []
        for key, inner in value.items():
            pairs += _flat(f"{prefix}.{key}" if prefix else str(key), inner)
        return pairs
    if isinstance(value, float):
        return [(prefix, f"{value:,.3f}".rstrip("0").rstrip("."))]
    if isinstance(value, int) and not isinstance(value, bool):
        return [(prefix, f"{value:,}")]
    if value is None or value == {}:
        return [(prefix, "-")]
    return [(prefix, str(value))]


def stats_view(
    stats: dict[str, Any],
    now: datetime,
    tz: tzinfo | None,
    names: Mapping[str, str] | None = None,
) -> str:
    """`stats`: every figure as a `path  value` line, then the latest failures."""
    figures = {k: v for k, v in stats.items() if k not in ("as_of", "latest_failures")}
    pairs = _flat("", figures)
    lines = [f"as of {when(stats.get('as_of'), now, tz)}"]
    if pairs:
        lines.append(table(["FIGURE", "VALUE"], pairs))
    failures = stats.get("latest_failures") or []
    if failures:
        lines.append("\nlatest failures:")
        rows = [
            [
                str(f.get("id") or f.get("event_id") or "-"),
                trigger_label(f.get("trigger_id"), names),
                "-" if f.get("last_status_code") is None else str(f.get("last_status_code")),
                _cut(f.get("last_error") or "-", 48),
                local_time(f.get("fired_at") or f.get("updated_at"), tz),
            ]
            for f in failures
            if isinstance(f, dict)
        ]
        lines.append(table(["EVENT", "TRIGGER", "CODE", "ERROR", "AT"], rows))
    return "\n".join(lines)


def series_table(series: dict[str, Any], tz: tzinfo | None) -> str:
    """`stats --series`: one row per bucket, oldest first."""
    points = series.get("points") or []
    if not points:
        return "No data."

    def ms(timing: object, key: str) -> str:
        value = timing.get(key) if isinstance(timing, dict) else None
        return "-" if value is None else human_duration(float(value) / 1000)

    rows = []
    for p in points:
        counts = p.get("counts") or {}
        rows.append(
            [
                local_time(p.get("start"), tz),
                *(f"{int(counts.get(s) or 0):,}" for s in ("success", "failure", "retrying")),
                f"{int(counts.get('pending') or 0):,}",
                ms(p.get("fire_lateness_ms"), "p50"),
                ms(p.get("fire_lateness_ms"), "p99"),
                ms(p.get("delivery_latency_ms"), "p50"),
                ms(p.get("delivery_latency_ms"), "p99"),
            ]
        )
    headers = [
        "BUCKET START",
        "SUCCESS",
        "FAILURE",
        "RETRYING",
        "PENDING",
        "LATE P50",
        "LATE P99",
        "LATENCY P50",
        "LATENCY P99",
    ]
    return table(headers, rows)


def aggregate_table(
    items: Sequence[dict[str, Any]],
    now: datetime,
    tz: tzinfo | None,
    names: Mapping[str, str] | None = None,
) -> str:
    """`aggregate`: events per trigger by status, over the kept window."""
    if not items:
        return "No events."
    statuses = ("pending", "retrying", "success", "failure", "total")
    headers = ["TRIGGER", "TYPE", *(s.upper() for s in statuses), "FAILURE RATE", "LAST FIRED"]
    rows = []
    for item in items:
        counts = item.get("counts") or {}
        total = int(counts.get("total") or 0)
        failed = int(counts.get("failure") or 0)
        rate = "-" if not total else f"{100 * failed / total:.1f}%"
        rows.append(
            [
                trigger_label(item.get("trigger_id"), names),
                str(item.get("trigger_type", "")),
                *(f"{int(counts.get(s) or 0):,}" for s in statuses),
                rate,
                when(item.get("last_fired_at"), now, tz),
            ]
        )
    return table(headers, rows)


def key_detail(key: dict[str, Any]) -> str:
    """`keys self`: the key this client uses (never the key itself: the API has none)."""
    pairs = [
        ("id", str(key.get("id", ""))),
        ("name", str(key.get("name", ""))),
        ("prefix", str(key.get("prefix", ""))),
        ("scopes", ", ".join(str(s) for s in key.get("scopes") or []) or "-"),
        ("bootstrap", "yes" if key.get("bootstrap") else "no"),
    ]
    return _fields(pairs)


def audit_table(items: Sequence[dict[str, Any]], now: datetime, tz: tzinfo | None) -> str:
    """`audit list`: who changed what, newest first (field names only: the API has no
    values to show)."""
    if not items:
        return "No audit entries."
    headers = [f"AT ({zone_name(tz, now)})", "ACTION", "TARGET", "KEY", "FIELDS", "REQUEST"]
    rows = [
        [
            local_time(e.get("at"), tz),
            str(e.get("action", "")),
            str(e.get("target_id") or "-"),
            f"{_cut(e.get('key_name'), 24)} ({e.get('key_id', '')})",
            ", ".join(str(f) for f in e.get("fields") or []) or "-",
            str(e.get("request_id") or "-"),
        ]
        for e in items
    ]
    return table(headers, rows)


def keys_table(items: Sequence[dict[str, Any]], now: datetime, tz: tzinfo | None) -> str:
    """`keys list`: managed and bootstrap keys (never a key itself: the API has none)."""
    if not items:
        return "No keys."
    headers = ["ID", "NAME", "PREFIX", "SCOPES", "EXPIRES", "LAST USED"]
    rows = [
        [
            str(k.get("id", "")) + (" (bootstrap)" if k.get("bootstrap") else ""),
            _cut(k.get("name")),
            str(k.get("prefix", "")),
            ",".join(str(s) for s in k.get("scopes") or []),
            when(k.get("expires_at"), now, tz) if k.get("expires_at") else "never",
            when(k.get("last_used_at"), now, tz) if k.get("last_used_at") else "-",
        ]
        for k in items
    ]
    return table(headers, rows)
