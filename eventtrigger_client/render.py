"""Tables and detail views for people: aligned columns, local times, human durations.

Pure functions of the API's JSON plus `now` and a time zone, so tests can pin both.
Scripts should use `--json` instead: these layouts may change, the API's JSON does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

NAME_WIDTH = 40  # longer names are cut with an ellipsis so one row stays one line


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


def _cut(text: object, width: int = NAME_WIDTH) -> str:
    value = "" if text is None else str(text)
    value = " ".join(value.split())  # a newline in a name must not break the row
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


def events_table(items: Sequence[dict[str, Any]], now: datetime, tz: tzinfo | None) -> str:
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
                str(e.get("trigger_id") or "-"),
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
    return "\n".join(f"{(k + ':').ljust(width)} {v}".rstrip() for k, v in pairs)


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


def event_detail(event: dict[str, Any], now: datetime, tz: tzinfo | None) -> str:
    """One event as `field: value` lines, then its payload as indented JSON."""
    code = event.get("last_status_code")
    pairs = [
        ("id", str(event.get("id", ""))),
        ("trigger", f"{event.get('trigger_id') or '-'} ({event.get('trigger_type', '?')})"),
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
    return _fields(pairs) + "\npayload:\n" + _json_block(event.get("payload"))


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
