"""Trigger definitions: validate and normalise what users send, and say when they fire.

Pure: `now` and the limits come in as arguments. A normalised config has every default
filled in, durations in canonical spelling, times in UTC (`...Z`), `run_in` resolved to
`run_at`, and an interval's anchor (`start_at`) fixed at saving time, so that the stored
config alone determines every future firing.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from eventtrigger.config import DEFAULT_DURATIONS
from eventtrigger.domain import schedule
from eventtrigger.domain.durations import DurationError, format_duration, parse_duration
from eventtrigger.domain.egress import Egress, IPNetwork, host_refusal
from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.ratelimit import Rate
from eventtrigger.domain.retry import retry_span
from eventtrigger.domain.schemas import (
    CONFIG_SCHEMAS,
    SCHEDULED_TYPES,
    TEST_RUN,
    TRIGGER_CREATE,
    TRIGGER_PATCH,
    TRIGGER_TEST,
)
from eventtrigger.domain.times import iso, parse_iso, parse_rfc3339
from eventtrigger.domain.validation import BodyValidator, depth_errors, user_schema_errors

CREATE = BodyValidator(TRIGGER_CREATE)
PATCH = BodyValidator(TRIGGER_PATCH)
TEST = BodyValidator(TRIGGER_TEST)
TEST_RUN_BODY = BodyValidator(TEST_RUN)
CONFIGS = {kind: BodyValidator(schema) for kind, schema in CONFIG_SCHEMAS.items()}

DEFAULT_RETRY = {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"}
MIN_TIMEOUT, MAX_TIMEOUT = timedelta(milliseconds=100), timedelta(minutes=2)
MIN_INITIAL_DELAY, MAX_DELAY_CAP = timedelta(milliseconds=100), timedelta(hours=1)
MIN_EVERY = timedelta(seconds=1)
MAX_MISFIRE_GRACE, MAX_CRON_JITTER = timedelta(days=1), timedelta(hours=1)
# A Retry-After of more than a day helps nobody; nor does a limit that slow.
MIN_INGEST_PER_SECOND = 1 / 86400
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 header field name
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
# We set these ourselves on every delivery; a user value would break signing or framing.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)


@dataclass(frozen=True)
class Limits:
    """What validation needs from the settings."""

    # Settings.egress; bare networks allow those and no host by name.
    egress_allow: Egress | tuple[IPNetwork, ...] = ()
    retention_active: timedelta = DEFAULT_DURATIONS["RETENTION_ACTIVE"]


@dataclass(frozen=True)
class TriggerInput:
    name: str
    type: str
    status: str
    config: dict[str, Any]


@dataclass(frozen=True)
class TriggerPatch:
    name: str | None
    status: str | None
    config: dict[str, Any] | None


def validate_create(body: Any, now: datetime, limits: Limits) -> TriggerInput:
    errors = CREATE.errors(body)
    if errors or not isinstance(body, dict):
        if isinstance(body, dict) and body.get("type") in CONFIGS:
            errors += _config_errors_only(body["type"], body.get("config"), now, limits)
        raise InvalidInput(errors)
    config = normalise_config(body["type"], body["config"], now, limits)
    return TriggerInput(body["name"], body["type"], body.get("status", "active"), config)


def validate_patch(body: Any, kind: str, now: datetime, limits: Limits) -> TriggerPatch:
    errors = PATCH.errors(body)
    if errors:
        raise InvalidInput(errors)
    config = body.get("config")
    if config is not None:
        config = normalise_config(kind, config, now, limits)
    return TriggerPatch(body.get("name"), body.get("status"), config)


def _config_errors_only(kind: str, config: Any, now: datetime, limits: Limits) -> list[FieldError]:
    """Config errors to report alongside top-level ones, so one round trip shows them all."""
    if not isinstance(config, dict):
        return []
    try:
        normalise_config(kind, config, now, limits)
    except InvalidInput as exc:
        return exc.errors
    return []


def normalise_config(kind: str, config: Any, now: datetime, limits: Limits) -> dict[str, Any]:
    """Validate `config` of trigger type `kind`; its normalised form or InvalidInput."""
    errors = [_only_webhooks_limit(e) for e in CONFIGS[kind].errors(config, ("config",))]
    if isinstance(config, dict):
        for name in ("payload", "schema"):
            errors += depth_errors(config.get(name), f"config.{name}")
    if errors:
        raise InvalidInput(errors + _semantic_errors_besides(kind, config, errors, now, limits))
    checker = _Checker(now, limits)
    out = checker.common(config)
    if kind == "webhook":
        errors = user_schema_errors(config["schema"], "config.schema")
        checker.errors.extend(errors)
        out["schema"] = config["schema"]
        if "ingest_rate_limit" in config:
            out["ingest_rate_limit"] = checker.ingest_rate_limit(config["ingest_rate_limit"])
    elif kind == "time_scheduled":
        checker.one_time(config, out)
    elif kind == "cron_scheduled":
        checker.cron(config, out)
    else:
        checker.interval(config, out)
    if kind in SCHEDULED_TYPES:
        out["payload"] = config.get("payload")
        checker.policies(kind, config, out)
        if not checker.errors and first_fire(kind, out, now) is None:
            field = "config.end_at" if out.get("end_at") else f"config.{_SCHEDULE_FIELD[kind]}"
            checker.errors.append(FieldError(field, "the schedule has no future occurrence"))
    if checker.errors:
        raise InvalidInput(checker.errors)
    return out


def _only_webhooks_limit(error: FieldError) -> FieldError:
    """The schema of a scheduled type knows no `ingest_rate_limit`; say why, not just
    "unknown field"."""
    if error.field == "config.ingest_rate_limit" and error.message.startswith("unknown field"):
        return FieldError(error.field, "only webhook triggers take an ingest rate limit")
    return error


def ingest_rate(config: dict[str, Any]) -> Rate | None:
    """A normalised webhook config's own rate limit, if it has one."""
    limit = config.get("ingest_rate_limit")
    return None if limit is None else Rate(limit["per_second"], limit["burst"])


# Stand-ins for fields that failed structural checks, so the semantic checks can still
# run on the rest and one response lists every problem (never reported themselves).
_STAND_INS: dict[str, Any] = {
    "endpoint": "https://stand-in.invalid/",
    "schema": {},
    "cron": "* * * * *",
    "every": "1h",
    "run_in": "1h",
}


def _semantic_errors_besides(
    kind: str, config: Any, structural: list[FieldError], now: datetime, limits: Limits
) -> list[FieldError]:
    """Semantic errors in the fields that passed the structural checks."""
    if not isinstance(config, dict):
        return []
    known = CONFIG_SCHEMAS[kind]["properties"]
    broken = {e.field.removeprefix("config.").split(".")[0].split("[")[0] for e in structural}
    sane = {k: v for k, v in config.items() if k in known and k not in broken}
    stood_in = set()
    for name in CONFIG_SCHEMAS[kind]["required"]:
        if name not in sane:
            sane[name] = _STAND_INS[name]
            stood_in.add(name)
    if kind == "time_scheduled" and not {"run_at", "run_in"} & sane.keys():
        sane["run_in"] = _STAND_INS["run_in"]
        stood_in |= {"run_in", "run_at"}
    try:
        normalise_config(kind, sane, now, limits)
    except InvalidInput as exc:
        return [
            e
            for e in exc.errors
            if e.field.removeprefix("config.").split(".")[0] not in stood_in | broken
        ]
    return []


_SCHEDULE_FIELD = {
    "time_scheduled": "run_at",
    "cron_scheduled": "cron",
    "interval_scheduled": "every",
}


class _Checker:
    """Semantic checks that JSON Schema cannot express; collects every error."""

    def __init__(self, now: datetime, limits: Limits) -> None:
        self.now = now
        self.limits = limits
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def duration(self, value: Any, field: str, low: timedelta, high: timedelta | None) -> timedelta:
        try:
            parsed = parse_duration(value)
        except DurationError as exc:
            self.fail(field, str(exc))
            return low
        if parsed < low:
            self.fail(field, f"must be at least {format_duration(low)}")
        elif high is not None and parsed > high:
            self.fail(field, f"must be at most {format_duration(high)}")
        return parsed

    def time(self, value: str, field: str) -> datetime | None:
        if not _RFC3339.fullmatch(value):
            self.fail(field, "expected RFC 3339 with an offset, e.g. 2025-10-15T14:00:00Z")
            return None
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            self.fail(field, f"not a valid time: {exc}")
            return None

    def common(self, config: dict[str, Any]) -> dict[str, Any]:
        self.endpoint(config["endpoint"])
        headers = config.get("headers", {})
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                self.fail(f"config.headers.{name}", "not a valid header name")
            elif name.lower() in RESERVED_HEADERS:
                self.fail(f"config.headers.{name}", "is set by eventtrigger and cannot be given")
            if "\r" in value or "\n" in value:
                self.fail(f"config.headers.{name}", "header values cannot contain line breaks")
        timeout = self.duration(
            config.get("timeout", "10s"), "config.timeout", MIN_TIMEOUT, MAX_TIMEOUT
        )
        retry = {**DEFAULT_RETRY, **config.get("retry", {})}
        retry["max_attempts"] = int(retry["max_attempts"])  # JSON Schema counts 5.0 as integer
        initial = self.duration(
            retry["initial_delay"], "config.retry.initial_delay", MIN_INITIAL_DELAY, MAX_DELAY_CAP
        )
        maximum = self.duration(
            retry["max_delay"], "config.retry.max_delay", MIN_INITIAL_DELAY, MAX_DELAY_CAP
        )
        if maximum < initial:
            self.fail("config.retry.max_delay", "must not be shorter than initial_delay")
        span = retry_span(retry["max_attempts"], initial, maximum, timeout)
        if not self.errors and span > self.limits.retention_active:
            self.fail(
                "config.retry",
                f"all attempts may take up to {format_duration(span)}, longer than the "
                f"active window ({format_duration(self.limits.retention_active)})",
            )
        return {
            "endpoint": config["endpoint"],
            "method": config.get("method", "POST"),
            "headers": dict(headers),
            "timeout": format_duration(timeout),
            "retry": {
                "max_attempts": retry["max_attempts"],
                "initial_delay": format_duration(initial),
                "max_delay": format_duration(maximum),
            },
        }

    def ingest_rate_limit(self, limit: dict[str, Any]) -> dict[str, Any]:
        per_second = limit["per_second"]
        if per_second < MIN_INGEST_PER_SECOND:
            self.fail(
                "config.ingest_rate_limit.per_second",
                "must allow at least one call a day (1/86400, about 0.0000116)",
            )
        # JSON Schema counts 5.0 as an integer; stored as one.
        return {"per_second": per_second, "burst": int(limit["burst"])}

    def endpoint(self, url: str) -> None:
        field = "config.endpoint"
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises on a bad port
        except ValueError as exc:
            self.fail(field, f"not a valid URL: {exc}")
            return
        if parts.scheme not in ("http", "https"):
            self.fail(field, "must be an http or https URL")
        elif not host:
            self.fail(field, "the URL needs a host")
        elif parts.username is not None or parts.password is not None:
            self.fail(field, "put credentials in headers, not in the URL")
        elif any(c.isspace() for c in url):
            self.fail(field, "the URL cannot contain spaces")
        elif not _valid_host(host):
            self.fail(field, f"{host!r} is not a valid host name")
        elif (why := host_refusal(host, self.limits.egress_allow)) is not None:
            self.fail(field, why)

    def one_time(self, config: dict[str, Any], out: dict[str, Any]) -> None:
        has_at, has_in = "run_at" in config, "run_in" in config
        if has_at == has_in:
            self.fail("config.run_at", "give exactly one of run_at or run_in")
            return
        if has_in:
            delay = self.duration(config["run_in"], "config.run_in", timedelta(0), None)
            try:
                out["run_at"] = iso(self.now + delay)
            except OverflowError:
                self.fail("config.run_in", "is too far in the future")
            return
        run_at = self.time(config["run_at"], "config.run_at")
        if run_at is not None:
            if run_at < self.now:
                self.fail("config.run_at", "is in the past")
            out["run_at"] = iso(run_at)

    def bounds(self, config: dict[str, Any], out: dict[str, Any]) -> None:
        start = self.time(config["start_at"], "config.start_at") if "start_at" in config else None
        end = self.time(config["end_at"], "config.end_at") if "end_at" in config else None
        if start is not None and end is not None and start >= end:
            self.fail("config.end_at", "must be after start_at")
        if start is not None:
            out["start_at"] = iso(start)
        if end is not None:
            out["end_at"] = iso(end)

    def cron(self, config: dict[str, Any], out: dict[str, Any]) -> None:
        problem = schedule.cron_error(config["cron"])
        if problem is not None:
            self.fail("config.cron", problem)
        timezone = config.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.fail("config.timezone", f"{timezone!r} is not an IANA time zone")
        out["cron"] = " ".join(config["cron"].split())
        out["timezone"] = timezone
        self.bounds(config, out)

    def policies(self, kind: str, config: dict[str, Any], out: dict[str, Any]) -> None:
        """Scheduling policies: kept only when given (absent ones take their defaults)."""
        if "misfire" in config:
            out["misfire"] = config["misfire"]
        if "misfire_grace" in config:
            grace = self.duration(
                config["misfire_grace"], "config.misfire_grace", timedelta(0), MAX_MISFIRE_GRACE
            )
            out["misfire_grace"] = format_duration(grace)
        if "auto_pause_after" in config:
            out["auto_pause_after"] = config["auto_pause_after"]
        if "jitter" in config:
            if kind == "interval_scheduled" and "every" in out:
                high = parse_duration(out["every"]) / 2
            else:
                high = MAX_CRON_JITTER
            jitter = self.duration(config["jitter"], "config.jitter", timedelta(0), high)
            out["jitter"] = format_duration(jitter)

    def interval(self, config: dict[str, Any], out: dict[str, Any]) -> None:
        every = self.duration(config["every"], "config.every", MIN_EVERY, None)
        out["every"] = format_duration(every)
        self.bounds(config, out)
        out.setdefault("start_at", iso(self.now))  # the anchor: creation (or edit) time


def _valid_host(host: str) -> bool:
    """Whether the host can be looked up at all (IDNA: no empty or over-long labels)."""
    bare = host.strip("[]")
    if ":" in bare:  # an IPv6 literal, already parsed by urlsplit
        return True
    try:
        bare.encode("idna")
    except UnicodeError:
        return False
    return True


def next_fire(kind: str, config: dict[str, Any], after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` of a normalised scheduled config."""
    start = parse_iso(config["start_at"]) if config.get("start_at") else None
    end = parse_iso(config["end_at"]) if config.get("end_at") else None
    if kind == "time_scheduled":
        return schedule.next_once(parse_iso(config["run_at"]), after)
    if kind == "cron_scheduled":
        return schedule.next_cron(
            config["cron"], config["timezone"], after, start_at=start, end_at=end
        )
    if kind == "interval_scheduled":
        assert start is not None, "a normalised interval config always has its anchor"
        return schedule.next_interval(parse_duration(config["every"]), start, after, end_at=end)
    return None


def first_fire(kind: str, config: dict[str, Any], now: datetime) -> datetime | None:
    """When a trigger saved (or resumed) at `now` fires first.

    A one-time trigger saved with run_in=0 fires at `now`; otherwise strictly after now.
    """
    if kind == "time_scheduled":
        run_at = parse_iso(config["run_at"])
        return run_at if run_at >= now else None
    return next_fire(kind, config, now)


@dataclass(frozen=True)
class PatchPlan:
    """What a PATCH does: the new row and whether the occurrences are replaced."""

    name: str
    status: str
    config: dict[str, Any]
    version: int
    reschedule: bool  # cancel pending occurrences, then add `next_fire_at` if any
    next_fire_at: datetime | None


def plan_patch(
    *,
    kind: str,
    name: str,
    status: str,
    config: dict[str, Any],
    version: int,
    patch: TriggerPatch,
    now: datetime,
) -> PatchPlan:
    """Decide a PATCH from the current state (pure; the caller holds the row lock).

    Edits and resumes take effect from `now`: the next occurrence is the first one in the
    future, so a resumed trigger never bursts through the runs it missed.
    """
    new_config = patch.config if patch.config is not None else config
    config_changed = patch.config is not None and patch.config != config
    new_status = patch.status or status
    if status == "completed" and patch.status is None and config_changed:
        new_status = "active"  # a one-time trigger given a new time runs again
    if status == "completed" and new_status == "active" and not config_changed:
        raise InvalidInput(
            [FieldError("status", "the trigger has already fired; give a new config to rearm it")]
        )
    reschedule = kind in SCHEDULED_TYPES and (config_changed or new_status != status)
    next_at = None
    if reschedule and new_status == "active":
        next_at = first_fire(kind, new_config, now)
        if next_at is None:
            field = "config" if config_changed else "status"
            raise InvalidInput([FieldError(field, "the schedule has no future occurrence")])
    return PatchPlan(
        name=patch.name if patch.name is not None else name,
        status=new_status,
        config=new_config,
        version=version + 1 if config_changed else version,
        reschedule=reschedule,
        next_fire_at=next_at,
    )
