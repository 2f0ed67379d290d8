"""Events and the Kafka job message: one typed contract (pure).

An event row holds everything needed to (re)build its job: the payload and a `request`
snapshot of the trigger's delivery settings taken when it fired, so edits after a firing
never change it and a re-publish sends exactly what the first publish sent.

The contract has three ends, all here: `from_event` builds a job (the `Job` shape),
`decode_job` checks one read back from Kafka (every field the worker and delivery rely
on, or `BadJob` with a stable reason), and `dead_letter` / `rejected_message` make the
copies for the dead-letter topic, which never carry a secret: the dead-letter topic is
read by people and tools that have no business signing as the trigger.

Job messages carry no signing secret either: Kafka (its logs, its replicas, every
consumer of the topic) is not a place to keep them. The event id identifies the secrets
a job is signed with, because the event row's snapshot is written once at firing and
never changed: the worker reads them from that row in the transaction that leases the
job (`with_secrets`), so a job can never be signed with other secrets than its firing
took, and no cache can be stale. Messages written before this rule still carry them
(`signing_secret` and a rotation's fields): `decode_job` accepts both shapes, and the
worker signs such a message with its row's secrets as well.

Bodies: POST, PUT and PATCH always send the payload as JSON, a `null` payload included
(`request.body` is then None, which is why the method, not the body, decides whether a
request has one); GET and DELETE send none. Messages published before this rule read the
same way, so they stay deliverable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

import orjson

from eventtrigger.domain.durations import DurationError, parse_duration
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.domain.times import iso, parse_iso

MESSAGE_VERSION = 1
# Kafka refuses messages over 1 MiB by default (broker and producer alike); a job must
# fit whole, so bodies are capped below that at the door rather than failing later.
MAX_JOB_BYTES = 1_000_000
# What a reader accepts: the cap plus room for what the size check at the door does not
# see exactly (the attempt number's digits, a rotation's fields); past it, no producer of
# ours made the message.
MAX_READ_BYTES = MAX_JOB_BYTES + 64 * 1024
_SAMPLE_TIME = datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
METHODS = frozenset({"POST", "GET", "PUT", "PATCH", "DELETE"})
BODYLESS_METHODS = frozenset({"GET", "DELETE"})
TEST_RUN_NOTE = "test run"
_ROTATION_FIELDS = ("previous_signing_secret", "previous_secret_expires_at")
# Never in a dead-letter copy (nor in any field whose name says "secret").
SECRET_FIELDS = ("signing_secret", *_ROTATION_FIELDS)
DEFAULT_PORTS = {"http": 80, "https": 443}
REJECT_REASONS = ("not_json", "too_large", "missing_field", "bad_field", "bad_url", "bad_version")
REJECTED_HEAD_BYTES = 1024
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
# In the head of a rejected message: a `whsec_` secret, or the value of any JSON field
# whose name mentions a secret (the value may be cut short by the head's end).
_SECRET_VALUE = re.compile(r'("[^"]*secret[^"]*"\s*:\s*)"[^"]*"?', re.IGNORECASE)
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=_-]*")
REDACTED = "[redacted]"


class JobRequest(TypedDict):
    url: str
    method: str  # one of METHODS
    headers: dict[str, str]
    body: Any  # the payload (None for GET/DELETE, or a JSON null payload)


class RetryPolicy(TypedDict):
    max_attempts: int
    initial_delay: str | int | float  # durations, as `parse_duration` reads them
    max_delay: str | int | float


class Job(TypedDict):
    """The v1 job message, as published to the job topic."""

    v: int
    event_id: str
    trigger_id: str | None  # None for pure test runs
    trigger_type: str
    source: str
    is_test_run: bool
    scheduled_at: str  # RFC 3339
    fired_at: str  # RFC 3339
    attempt: int  # >= 1
    request: JobRequest
    timeout: str | int | float
    retry: RetryPolicy
    # Messages of earlier versions also carried the secrets: `signing_secret` and, during
    # a rotation's grace, `previous_signing_secret` and `previous_secret_expires_at`.
    # `decode_job` still accepts them; nothing publishes them any more.
    signing_secret: NotRequired[str]
    previous_signing_secret: NotRequired[str]
    previous_secret_expires_at: NotRequired[str]


# What each field of a job message means, for the people who consume the topic (the Kafka
# message reference is generated from this and the types above; a test checks that every
# field of Job, JobRequest and RetryPolicy is described here, by its dotted path).
JOB_FIELDS: dict[str, str] = {
    "v": "Message version, always 1; a reader refuses any other (`bad_version`).",
    "event_id": "The event this job delivers (the id in the events API and in the "
    "`webhook-id` header). With `attempt`, it identifies a message: the same job can "
    "arrive more than once.",
    "trigger_id": "The trigger that fired; null for a test run of an unsaved trigger "
    "(`POST /api/v1/test-runs`).",
    "trigger_type": "`webhook`, `time_scheduled`, `cron_scheduled` or `interval_scheduled`.",
    "source": "Why the event exists: `api` (a webhook call), `scheduled`, `manual-test` or "
    "`replay`.",
    "is_test_run": "True for test firings and test runs (their events are marked so in the "
    "events API).",
    "scheduled_at": "When the firing was due (RFC 3339, UTC); for a webhook call, when it arrived.",
    "fired_at": "When the event was created (RFC 3339, UTC).",
    "attempt": "Which delivery attempt this is, from 1; a retry is a new message with the "
    "next number.",
    "request": "What to send: the trigger's delivery settings when it fired, so later edits "
    "never change it.",
    "request.url": "The endpoint (http or https).",
    "request.method": "`POST`, `GET`, `PUT`, `PATCH` or `DELETE`.",
    "request.headers": "Extra request headers, names to values.",
    "request.body": "The payload, sent as JSON (`null` included) for POST, PUT and PATCH; "
    "null and not sent for GET and DELETE.",
    "timeout": "How long one attempt may take (a duration such as `10s`, or seconds).",
    "retry": "The retry policy of the trigger when it fired.",
    "retry.max_attempts": "Attempts in all, the first included.",
    "retry.initial_delay": "Wait before the first retry (a duration, or seconds); it "
    "doubles at each retry.",
    "retry.max_delay": "The longest wait between two attempts (a duration, or seconds).",
    "signing_secret": "Messages of earlier versions only: the secret to sign with. Never "
    "published now; the worker reads the secrets from the event row.",
    "previous_signing_secret": "Messages of earlier versions only, during a secret "
    "rotation's grace: the previous secret.",
    "previous_secret_expires_at": "Messages of earlier versions only: when the previous "
    "secret's grace ends (RFC 3339).",
}


class BadJob(ValueError):
    """A message on the job topic that is not a usable job: `reason` is one of
    REJECT_REASONS (a metric label), `detail` names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def request_snapshot(
    config: dict[str, Any], signing: str | SigningKeys, now: datetime | None = None
) -> dict[str, Any]:
    """The delivery settings a firing keeps. During a secret rotation's grace the previous
    secret and its expiry go along, so the worker can add its signature to attempts made
    before that expiry (and only to those). Given `now` (the firing's time), a previous
    secret whose grace has ended by then is left out."""
    keys = signing if isinstance(signing, SigningKeys) else SigningKeys(signing)
    snapshot = {
        "url": config["endpoint"],
        "method": config["method"],
        "headers": config["headers"],
        "timeout": config["timeout"],
        "retry": config["retry"],
        "signing_secret": keys.secret,
    }
    previous = keys.previous if now is None else keys.previous_at(now)
    if previous is not None and keys.previous_expires_at is not None:
        snapshot["previous_signing_secret"] = previous
        snapshot["previous_secret_expires_at"] = iso(keys.previous_expires_at)
    return snapshot


@dataclass(frozen=True)
class NewEvent:
    id: str
    trigger_id: str | None
    trigger_type: str
    source: str  # api | scheduled | manual-test | replay
    scheduled_at: datetime
    fired_at: datetime
    payload: Any
    request: dict[str, Any]
    next_attempt_at: datetime  # republish deadline if nothing finished it by then
    occurrence_id: int | None = None
    is_test_run: bool = False
    note: str | None = None
    replay_of: str | None = None  # the event this one replays (source "replay")


def from_event(event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The v1 job (a `Job`) for an event row (a dict with event_logs column names): no
    signing secret goes along (the worker reads them from the event row). `now`, the
    publish time, is accepted for the callers that pass it; the job does not depend on it.
    """
    del now  # the secrets, which it used to filter, stay in the row
    request = event["request"]
    method = request["method"]
    return {
        "v": MESSAGE_VERSION,
        "event_id": event["id"],
        "trigger_id": event["trigger_id"],
        "trigger_type": event["trigger_type"],
        "source": event["source"],
        "is_test_run": bool(event["is_test_run"]),
        "scheduled_at": iso(event["scheduled_at"]),
        "fired_at": iso(event["fired_at"]),
        "attempt": int(event["attempts"]) + 1,
        "request": {
            "url": request["url"],
            "method": method,
            "headers": request["headers"],
            "body": None if method in BODYLESS_METHODS else event["payload"],
        },
        "timeout": request["timeout"],
        "retry": request["retry"],
    }


job_message = from_event  # the name callers used before the contract had three ends


def snapshot_secrets(request: Any) -> dict[str, str]:
    """The signing fields of an event's request snapshot (the current secret and, after a
    rotation, the previous one with its expiry): those that are non-empty strings."""
    if not isinstance(request, dict):
        return {}
    return {k: v for k in SECRET_FIELDS if isinstance(v := request.get(k), str) and v}


def with_secrets(job: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """The job as the worker signs it, in memory only: the secrets of its event row
    (`snapshot_secrets`) in place of any the message carried. A row without them (none
    that we wrote) leaves a message's own, so an old message is signed as it always was.
    Never published: dead-letter copies strip them again (`dead_letter`)."""
    if "signing_secret" not in secrets:
        return job
    return {**{k: v for k, v in job.items() if k not in SECRET_FIELDS}, **secrets}


def request_body(request: dict[str, Any]) -> bytes | None:
    """The bytes a job's request sends: its payload as JSON (`null` too) unless the method
    takes no body (None then)."""
    if request["method"] in BODYLESS_METHODS:
        return None
    return orjson.dumps(request["body"])


def _strip_secrets(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in SECRET_FIELDS and "secret" not in k}


def dead_letter(job: dict[str, Any], error: str | None, status_code: int | None) -> dict[str, Any]:
    """The dead-letter copy of a job that failed for good: the job, why, and no secret."""
    return {**_strip_secrets(job), "final_error": error, "final_status_code": status_code}


def dead_letter_message(event: dict[str, Any]) -> dict[str, Any]:
    """The dead-letter copy of a final failure, from its event row (with `attempts`,
    `last_error` and `last_status_code`): the last attempt's job and why it failed."""
    last = from_event({**event, "attempts": int(event["attempts"]) - 1})
    return dead_letter(last, event["last_error"], event["last_status_code"])


def rejected_message(
    value: bytes | None, reason: str, detail: str, topic: str, partition: int, offset: int
) -> dict[str, Any]:
    """The dead-letter body for a message on the job topic that is not a job: where it
    was, why, and its first REJECTED_HEAD_BYTES as text, secrets blanked out."""
    raw = value or b""
    head = raw[:REJECTED_HEAD_BYTES].decode(errors="replace")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        head = orjson.dumps(_strip_secrets(parsed))[:REJECTED_HEAD_BYTES].decode(errors="replace")
    head = _WHSEC.sub(REDACTED, _SECRET_VALUE.sub(rf'\1"{REDACTED}"', head))
    return {
        "v": MESSAGE_VERSION,
        "rejected": True,
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "value_bytes": len(raw),
        "value_head": head,
    }


# -- reading a job back -----------------------------------------------------------------


def decode_job(value: bytes | None) -> dict[str, Any]:
    """A job message read from Kafka, checked for every field the worker and delivery
    rely on; BadJob (with its reason and the field) otherwise."""
    raw = value or b""
    if len(raw) > MAX_READ_BYTES:
        raise BadJob("too_large", f"{len(raw)} bytes, over {MAX_READ_BYTES}")
    try:
        job = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadJob("not_json", f"not JSON: {exc}") from None
    if not isinstance(job, dict):
        raise BadJob("not_json", f"not a JSON object but {type(job).__name__}")
    version = _field(job, "v")
    if not _is_int(version) or version != MESSAGE_VERSION:
        raise BadJob("bad_version", f"v: {version!r} is not {MESSAGE_VERSION}")
    _text(job, "event_id")
    trigger_id = _field(job, "trigger_id")
    if trigger_id is not None and not (isinstance(trigger_id, str) and trigger_id):
        raise BadJob("bad_field", "trigger_id: expected a string or null")
    if "trigger_type" in job:
        _text(job, "trigger_type")
    if "is_test_run" in job and not isinstance(job["is_test_run"], bool):
        raise BadJob("bad_field", "is_test_run: expected true or false")
    attempt = _field(job, "attempt")
    if not _is_int(attempt) or attempt < 1:
        raise BadJob("bad_field", "attempt: expected an integer >= 1")
    _text(job, "source")
    _time(job, "fired_at")
    _time(job, "scheduled_at")
    request = _object(job, "request")
    _url(_field(request, "url", "request."))
    method = _field(request, "method", "request.")
    if method not in METHODS:
        raise BadJob("bad_field", f"request.method: expected one of {', '.join(sorted(METHODS))}")
    headers = _object(request, "headers", "request.")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise BadJob("bad_field", "request.headers: expected string names and values")
    _field(request, "body", "request.")
    if _duration(job, "timeout").total_seconds() <= 0:
        raise BadJob("bad_field", "timeout: must be longer than 0s")
    policy = _object(job, "retry")
    max_attempts = _field(policy, "max_attempts", "retry.")
    if not _is_int(max_attempts) or max_attempts < 1:
        raise BadJob("bad_field", "retry.max_attempts: expected an integer >= 1")
    _duration(policy, "initial_delay", "retry.")
    _duration(policy, "max_delay", "retry.")
    # Secrets are absent from the jobs we publish now; a message of an earlier version
    # carries them, and then they must be whole. Null means absent.
    if job.get("signing_secret") is not None:
        _text(job, "signing_secret")
    # A rotation's fields are optional, and null means absent; present, they must be whole.
    previous = job.get("previous_signing_secret")
    expires = job.get("previous_secret_expires_at")
    if previous is not None or expires is not None:
        _text(job, "previous_signing_secret")
        _time(job, "previous_secret_expires_at")
    return job


decode = decode_job


def _field(obj: dict[str, Any], name: str, prefix: str = "") -> Any:
    if name not in obj:
        raise BadJob("missing_field", f"{prefix}{name}: missing")
    return obj[name]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(obj: dict[str, Any], name: str, prefix: str = "") -> str:
    value = _field(obj, name, prefix)
    if not isinstance(value, str) or not value:
        raise BadJob("bad_field", f"{prefix}{name}: expected a non-empty string")
    return value


def _object(obj: dict[str, Any], name: str, prefix: str = "") -> dict[str, Any]:
    value = _field(obj, name, prefix)
    if not isinstance(value, dict):
        raise BadJob("bad_field", f"{prefix}{name}: expected an object")
    return value


def _time(obj: dict[str, Any], name: str) -> datetime:
    value = _text(obj, name)
    try:
        if not _RFC3339.fullmatch(value):
            raise ValueError(value)
        return parse_iso(value)
    except ValueError:
        raise BadJob("bad_field", f"{name}: not an RFC 3339 time") from None


def _duration(obj: dict[str, Any], name: str, prefix: str = "") -> Any:
    value = _field(obj, name, prefix)
    try:
        return parse_duration(value)
    except (DurationError, TypeError, OverflowError) as exc:
        raise BadJob("bad_field", f"{prefix}{name}: {exc}") from None


def _url(url: Any) -> None:
    if not isinstance(url, str):
        raise BadJob("bad_url", "request.url: expected a string")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # `.port` raises on a port out of range
    except ValueError as exc:
        raise BadJob("bad_url", f"request.url: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise BadJob("bad_url", "request.url: the scheme must be http or https")
    if not host:
        raise BadJob("bad_url", "request.url: no host")


def endpoint_key(url: str) -> str:
    """Scheme, host and port of a delivery URL, the host lower-cased (IDNA-encoded, IPv6
    compressed in brackets) and the default port made explicit: what one endpoint's jobs
    share. ValueError if the URL cannot be split (`decode_job` refuses those)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A host IDNA refuses stays as it is: it cannot be sent to anyway (delivery
        # records a permanent failure).
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    else:
        host = f"[{address.compressed}]" if address.version == 6 else address.compressed
    return f"{scheme}://{host}:{port}"


# -- helpers for the API ----------------------------------------------------------------


def event_dict(event: NewEvent) -> dict[str, Any]:
    """A NewEvent in the shape `from_event` reads (no attempts made yet)."""
    return {
        "id": event.id,
        "trigger_id": event.trigger_id,
        "trigger_type": event.trigger_type,
        "source": event.source,
        "is_test_run": event.is_test_run,
        "scheduled_at": event.scheduled_at,
        "fired_at": event.fired_at,
        "payload": event.payload,
        "request": event.request,
        "attempts": 0,
    }


def job_bytes(payload: Any, request: dict[str, Any]) -> int:
    """Size of the job message a firing with this payload and request snapshot makes."""
    sample = {
        "id": "0" * 26, "trigger_id": "0" * 26, "trigger_type": "interval_scheduled",
        "source": "manual-test", "is_test_run": True, "scheduled_at": _SAMPLE_TIME,
        "fired_at": _SAMPLE_TIME, "payload": payload, "request": request, "attempts": 19,
    }  # fmt: skip
    return len(orjson.dumps(from_event(sample)))


def message_key(message: dict[str, Any]) -> bytes:
    """Trigger id (event id for pure test runs): one trigger's jobs share a partition. A
    rejected message's copy is keyed by where the message was."""
    if message.get("rejected"):
        return f"{message['topic']}:{message['partition']}:{message['offset']}".encode()
    return str(message["trigger_id"] or message["event_id"]).encode()


def scheduled_time(message: dict[str, Any]) -> datetime:
    return parse_iso(message["scheduled_at"])
