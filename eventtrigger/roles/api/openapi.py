"""The OpenAPI 3.1 document, built from the very schemas the API validates with.

JSON Schema 2020-12 is OpenAPI 3.1's schema dialect, so `domain/schemas.py` is embedded
as is. Response shapes are described here; request shapes are never written twice.
"""

from __future__ import annotations

from typing import Any

from eventtrigger import __version__
from eventtrigger.domain.audit import ACTIONS as AUDIT_ACTIONS
from eventtrigger.domain.audit import DEFAULT_LIMIT as AUDIT_DEFAULT_LIMIT
from eventtrigger.domain.audit import MAX_LIMIT as AUDIT_MAX_LIMIT
from eventtrigger.domain.schemas import (
    CONFIG_SCHEMAS,
    REPLAY_BULK,
    ROTATE_SECRET,
    SECRET_ROTATION,
    TEST_RUN,
    TRIGGER_CREATE,
    TRIGGER_PATCH,
    TRIGGER_TEST,
    TRIGGER_TYPES,
)
from eventtrigger.roles.api.auth import ANY_KEY, ROUTE_SCOPES
from eventtrigger.roles.api.principal import SCOPES

_CONFIG_NAMES = {
    "webhook": "WebhookConfig",
    "time_scheduled": "TimeScheduledConfig",
    "cron_scheduled": "CronScheduledConfig",
    "interval_scheduled": "IntervalScheduledConfig",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


_ERRORS = {
    "400": _problem("Invalid input; `errors` names every offending field."),
    "401": _problem("Missing or invalid API key."),
    "413": _problem("Body larger than the limit (1 MiB by default)."),
    "415": _problem("Body not sent as application/json."),
}
_ID_PARAM = {"name": "trigger_id", "in": "path", "required": True, "schema": {"type": "string"}}
_EVENT_ID_PARAM = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "schema": {"type": "string"},
    "description": "The `next_cursor` of the previous page.",
}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_EVENT_STATUSES = ["pending", "retrying", "success", "failure"]
_SOURCES = ["api", "scheduled", "manual-test", "replay"]


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


_HEADERS_KEPT = (
    "Headers are bounded: at most 32, each value cut at 512 characters. Values of sensitive "
    "headers are masked as `***`: any header whose name contains `auth`, `credential`, "
    "`session`, `pass`, `sig`, `token`, `secret`, `key`, `cookie`, `private`, `jwt`, "
    "`bearer` or `access` (case-insensitive), except `webhook-signature` and CORS's "
    "`Access-Control-*`. A secret under a name that does not look secret is shown."
)
_URL_SHOWN = (
    "Every query value, the fragment and a password (or a user name alone) are `***`; "
    "the path is shown as it is."
)
_HEADER_MAP: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "maxProperties": 32,
    "description": "Header names (as sent or received) to values; a repeated header's "
    "values joined by `, `.",
}


def _event_schemas() -> dict[str, Any]:
    counts = {s: {"type": "integer"} for s in [*_EVENT_STATUSES, "total"]}
    schemas = {
        "Event": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "trigger_id": {"type": ["string", "null"], "description": "Null: test run."},
                "trigger_type": {"enum": list(TRIGGER_TYPES)},
                "source": {"enum": _SOURCES},
                "is_test_run": {"type": "boolean"},
                "note": {"type": ["string", "null"]},
                "replay_of": {
                    "type": ["string", "null"],
                    "description": "The event this one replays (source `replay`); else null.",
                },
                "scheduled_at": {"type": "string", "format": "date-time"},
                "fired_at": {"type": "string", "format": "date-time"},
                "payload": {"description": "The JSON delivered."},
                "status": {"enum": _EVENT_STATUSES},
                "attempts": {"type": "integer"},
                "last_status_code": {"type": ["integer", "null"]},
                "last_error": {"type": ["string", "null"]},
                "delivered_at": _TIME,
                "retention": {
                    "enum": ["active", "archived"],
                    "description": "From the fired time, whatever table holds the row.",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "EventPage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("Event")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "TriggerCounts": {
            "type": "object",
            "required": ["trigger_id", "trigger_type", "counts", "last_fired_at"],
            "properties": {
                "trigger_id": {"type": "string"},
                "trigger_type": {"enum": list(TRIGGER_TYPES)},
                "counts": {"type": "object", "required": list(counts), "properties": counts},
                "last_fired_at": {"type": "string", "format": "date-time"},
            },
        },
        "Attempt": {
            "type": "object",
            "properties": {
                "attempt": {"type": "integer", "minimum": 1},
                "started_at": {"type": "string", "format": "date-time"},
                "duration_ms": {"type": "integer"},
                "status_code": {
                    "type": ["integer", "null"],
                    "description": "Null: no answer (a network error or a timeout).",
                },
                "error": {"type": ["string", "null"], "description": "Null: delivered."},
                "response_body": {
                    "type": ["string", "null"],
                    "description": "The first 1 KiB of the response, as text.",
                },
                "next_attempt_at": {
                    **_TIME,
                    "description": "When the next attempt was due; null when this was the last.",
                },
                "request": {
                    "type": ["object", "null"],
                    "description": "The request as sent on this attempt: with an answer, every "
                    "header the HTTP client sent (Host, Content-Length...), else the headers "
                    "given to it. " + _HEADERS_KEPT + " The body is not repeated per attempt: "
                    "it is `request.body` of GET /api/v1/events/{event_id}; `body_sha256` "
                    "(hex; null without a body) tells whether that text is what this attempt "
                    "sent. Null for attempts stored before this was kept, and when no request "
                    "was made (no signing secret).",
                    "required": ["method", "url", "headers", "body_sha256"],
                    "properties": {
                        "method": {"type": "string"},
                        "url": {"type": "string", "description": _URL_SHOWN},
                        "headers": _HEADER_MAP,
                        "body_sha256": {"type": ["string", "null"]},
                    },
                },
                "response_headers": {
                    **_HEADER_MAP,
                    "type": ["object", "null"],
                    "description": "The response's headers. " + _HEADERS_KEPT + " Null when "
                    "there was no response (a network error or a timeout), and for attempts "
                    "stored before this was kept.",
                },
            },
        },
        "ReplayBulk": REPLAY_BULK,
        "ReplayIds": {
            "type": "object",
            "required": ["event_ids"],
            "properties": {
                "event_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The new events, in the order of their originals (oldest "
                    "first).",
                },
            },
        },
        "AttemptList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Attempt")}},
        },
        "TriggerCountsPage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("TriggerCounts")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "Stats": {
            "type": "object",
            "description": "The figures behind /metrics and /dashboard, cluster-wide, from a "
            "snapshot refreshed every 2 s (`as_of`); `this_process` is this process's own.",
            "properties": {
                "as_of": _TIME,
                "triggers": {"type": "object"},
                "jobs": {"type": "object"},
                "events": {
                    "type": "object",
                    "properties": {"active": {"type": "integer"}, "archived": {"type": "integer"}},
                },
                "outcomes": {"type": "object"},
                "fire_lateness_seconds": {"type": "object"},
                "delivery_latency_seconds": {"type": "object"},
                "latest_failures": {"type": "array", "items": {"type": "object"}},
                "this_process": {"type": "object"},
            },
        },
    }
    for name in ("Event", "Stats", "Attempt"):  # every property is always present
        schemas[name]["required"] = list(schemas[name]["properties"])
    detail = {
        "type": "object",
        "required": ["method", "url", "body"],
        "properties": {
            "method": {"type": "string"},
            "url": {"type": "string", "description": _URL_SHOWN},
            "body": {
                "type": ["string", "null"],
                "description": "The exact text each attempt sends (the payload as JSON); "
                "null for GET and DELETE, which send none. Rebuilt from the stored payload "
                "with the serializer deliveries use (not stored per attempt); compare its "
                "SHA-256 with an attempt's `request.body_sha256`.",
            },
        },
        "description": "What the event's attempts send; each attempt's headers are in "
        "GET /api/v1/events/{event_id}/attempts.",
    }
    schemas["EventDetail"] = {
        "type": "object",
        "properties": {**schemas["Event"]["properties"], "request": detail},
        "required": [*schemas["Event"]["required"], "request"],
    }
    return schemas


def _event_paths() -> dict[str, Any]:
    unauthorised = _problem("Missing or invalid API key.")
    return {
        "/api/v1/events": {
            "get": {
                "summary": "Event logs newest first by fired time, or per-trigger counts",
                "description": "`view=active` (default): fired within the active window; "
                "`archived`: older but not yet deleted. With `aggregate=trigger`: per-trigger "
                "counts by status over the whole kept window (active + archived), one item "
                "per trigger id, newest trigger first, paged with the same `limit`, `cursor` "
                "and `next_cursor` (the filters do not apply).",
                "operationId": "listEvents",
                "parameters": [
                    _query("view", {"enum": ["active", "archived"], "default": "active"}),
                    _query("trigger_id", {"type": "string"}),
                    _query("status", {"enum": _EVENT_STATUSES}),
                    _query("source", {"enum": _SOURCES}),
                    _query("is_test_run", {"enum": ["true", "false"]}),
                    _query("since", {"type": "string", "format": "date-time"}, "Inclusive."),
                    _query("until", {"type": "string", "format": "date-time"}, "Exclusive."),
                    _query("aggregate", {"enum": ["trigger"]}),
                    _LIMIT,
                    _CURSOR,
                ],
                "responses": {
                    "200": _json(
                        # anyOf: an empty page is both an event page and a counts page.
                        {"anyOf": [_ref("EventPage"), _ref("TriggerCountsPage")]},
                        "A page of events, or of per-trigger counts with aggregate=trigger.",
                    ),
                    "400": _ERRORS["400"],
                    "401": unauthorised,
                },
            }
        },
        "/api/v1/events/stream": {
            "get": {
                "summary": "Follow new events and their status changes (server-sent events)",
                "description": "A `text/event-stream` that stays open. Every event fired "
                "after it opened, and again each time an event's status changes (pending, "
                "retrying, success, failure), is one message `event: event`, `id: <event "
                "id>`, `data: <the event as an item of GET /api/v1/events>`, to streams "
                "whose filters it matches. A `: keep-alive` comment comes every 15 s. A "
                "stream is sent only the latest state of an event it has not been sent yet; "
                "a turn too large for it becomes one `: skipped N changes` comment; a client "
                "that has not read what was queued by the next poll is dropped with a final "
                "comment, and a stream ends with a comment when the server stops or its key "
                "is revoked or expires (checked every 30 s): reconnect to go on (changes in "
                "the gap are not replayed; history is GET /api/v1/events with `since`). "
                "Changes are read about once a second, once per process whatever the "
                "number of streams. The request must accept `text/event-stream` "
                "(EventSource does); without it the answer is 406. HEAD is refused (405).",
                "operationId": "streamEvents",
                "parameters": [
                    _query("trigger_id", {"type": "string"}),
                    _query("status", {"enum": _EVENT_STATUSES}),
                    _query("source", {"enum": _SOURCES}),
                ],
                "responses": {
                    "200": {
                        "description": "The stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _ERRORS["400"],
                    "401": unauthorised,
                    "406": _problem("The request does not accept `text/event-stream`."),
                    "429": _problem(
                        "This key has 10 live streams open on this process; `Retry-After` "
                        "says when to try again."
                    ),
                    "503": _problem(
                        "The server is stopping, or this process serves its maximum of "
                        "live streams; `Retry-After` says when to try again."
                    ),
                },
            }
        },
        "/api/v1/events/{event_id}": {
            "parameters": [_EVENT_ID_PARAM],
            "get": {
                "summary": "One event log, from either view",
                "operationId": "getEvent",
                "responses": {
                    "200": _json(_ref("EventDetail"), "The event, with the request it sends."),
                    "401": unauthorised,
                    "404": _problem("No such event, or past the total retention window."),
                },
            },
        },
        "/api/v1/events/{event_id}/attempts": {
            "parameters": [_EVENT_ID_PARAM],
            "get": {
                "summary": "One event's delivery attempts, oldest first",
                "description": "Kept, archived and deleted together with the event.",
                "operationId": "listEventAttempts",
                "responses": {
                    "200": _json(_ref("AttemptList"), "The attempts made so far."),
                    "401": unauthorised,
                    "404": _problem("No such event, or past the total retention window."),
                },
            },
        },
        "/api/v1/events/{event_id}/replay": {
            "parameters": [_EVENT_ID_PARAM],
            "post": {
                "summary": "Send an event again, as it was sent",
                "description": "A new event (`source: replay`, `replay_of` the original) with "
                "the original's trigger, payload and request as it was sent (not the "
                "trigger's current config), signed with the trigger's current secret while "
                "the trigger exists; a new webhook-id and fresh attempts. Works from the "
                "active and the archived view.",
                "operationId": "replayEvent",
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/EventId"}, "Replay fired."),
                    "401": unauthorised,
                    "404": _problem("No such event, or past the total retention window."),
                    "409": _problem("The event was never sent (its schedule failed)."),
                },
            },
        },
        "/api/v1/events/replay": {
            "post": {
                "summary": "Replay every event matching filters, oldest first",
                "operationId": "replayEvents",
                "requestBody": {"required": True, **_json(_ref("ReplayBulk"), "Filters.")},
                "responses": {
                    "202": _json(_ref("ReplayIds"), "Replays fired (possibly none)."),
                    "400": _ERRORS["400"],
                    "401": unauthorised,
                    "413": _ERRORS["413"],
                    "415": _ERRORS["415"],
                },
            },
        },
        "/api/v1/stats": {
            "get": {
                "summary": "The figures of /metrics and /dashboard as JSON",
                "operationId": "getStats",
                "responses": {"200": _json(_ref("Stats"), "The figures."), "401": unauthorised},
            }
        },
    }


# ---- the console (/dashboard) and its chart series: eventtrigger/roles/api/dashboard.py,
# series.py --------------------------------------------------------------------------------


_SERIES_RANGES = ("15m", "1h", "6h", "24h", "48h")  # series.RANGES


def _console_paths() -> dict[str, Any]:
    about = "Milliseconds, read from a log-scale histogram (within 19%); null without data."
    timing: dict[str, Any] = {
        "type": "object",
        "properties": {
            "p50": {"type": ["number", "null"]},
            "p99": {"type": ["number", "null"]},
        },
        "description": about,
    }
    point = {
        "type": "object",
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "counts": {
                "type": "object",
                "properties": {k: {"type": "integer"} for k in _EVENT_STATUSES},
                "description": "Events fired in the bucket, by current status.",
            },
            "fire_lateness_ms": {
                **timing,
                "description": "Scheduled firings: scheduled to fired. " + about,
            },
            "delivery_latency_ms": {
                **timing,
                "description": "Scheduled time to the final answer. " + about,
            },
        },
    }
    series = {
        "type": "object",
        "required": [
            "range",
            "bucket_seconds",
            "bucket_count",
            "from",
            "to",
            "trigger_id",
            "as_of",
            "points",
        ],
        "properties": {
            "range": {"enum": [*_SERIES_RANGES, "custom"]},
            "bucket_seconds": {"type": "integer"},
            "bucket_count": {"type": "integer"},
            "from": {
                "type": "string",
                "format": "date-time",
                "description": "The start of the first bucket.",
            },
            "to": {
                "type": "string",
                "format": "date-time",
                "description": "The end of the last bucket (a preset's last bucket holds "
                "now, so this is up to one bucket ahead), or the custom `to`.",
            },
            "trigger_id": {"type": ["string", "null"]},
            "as_of": {"type": "string", "format": "date-time"},
            "points": {"type": "array", "items": point, "description": "Oldest first."},
        },
    }
    return {
        "/api/v1/stats/series": {
            "get": {
                "summary": "Firings by outcome and p50/p99 timings per time bucket (charts)",
                "description": "A preset `range`: `15m` 60 buckets of 15 s, `1h` 60 of 1 "
                "min, `6h` 60 of 6 min, `24h` 72 of 20 min, `48h` 96 of 30 min; the last "
                "bucket holds now. Or a custom window `from` and `to` (RFC 3339; `to` "
                "defaults to now), within the total retention window (48 h by default) and "
                "`to` later than `from`: buckets of the smallest round length (1 s to 3 h) "
                "that needs at most 60, from `from`. The answer says its bucket length and "
                "the window it covers (`from`, `to`). Over active and archived events; "
                "`trigger_id` narrows to one trigger. Answers may be reused for a twentieth "
                "of a bucket (1 to 30 s).",
                "operationId": "getStatsSeries",
                "parameters": [
                    _query("range", {"enum": list(_SERIES_RANGES), "default": "1h"}),
                    _query(
                        "from",
                        {"type": "string", "format": "date-time"},
                        "A custom window's start (not with `range`).",
                    ),
                    _query(
                        "to",
                        {"type": "string", "format": "date-time"},
                        "A custom window's end (exclusive; default now).",
                    ),
                    _query("trigger_id", {"type": "string"}),
                ],
                "responses": {
                    "200": _json(series, "One point per bucket."),
                    "400": _ERRORS["400"],
                    "401": _problem("Missing or invalid API key."),
                },
            }
        },
        "/dashboard": {
            "get": {
                "summary": "The operator console (asks for a key, then calls the API with it)",
                "security": [],
                "responses": {"200": {"description": "HTML."}},
            }
        },
    }


# ---- the audit trail: eventtrigger/roles/api/audit.py ----------------------------------


def _audit_schemas() -> dict[str, Any]:
    return {
        "AuditEntry": {
            "type": "object",
            "required": [
                "id", "at", "key_id", "key_name", "action", "target_id", "request_id", "fields"
            ],
            "properties": {
                "id": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "key_id": {"type": "string", "description": "The API key that made the change."},
                "key_name": {"type": "string"},
                "action": {"enum": list(AUDIT_ACTIONS)},
                "target_id": {
                    "type": ["string", "null"],
                    "description": "The trigger, event or key acted on; for a bulk replay its "
                    "trigger filter, null without one.",
                },
                "request_id": {
                    "type": ["string", "null"],
                    "description": "The request's `X-Request-Id` (as in the logs).",
                },
                "fields": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The NAMES of the fields the change touched (e.g. `name`, "
                    "`config.cron`, `signing_secret`), never their values.",
                },
            },
        },
        "AuditPage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("AuditEntry")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `before` for the next (older) page.",
                },
            },
        },
    }  # fmt: skip


def _audit_paths() -> dict[str, Any]:
    return {
        "/api/v1/audit": {
            "get": {
                "summary": "The audit trail of management changes, newest first",
                "description": "One entry per change made through the API (trigger create, "
                "update, pause, resume, delete and rotations; replays; key create and "
                "revoke), written in the change's own transaction. Kept "
                "`EVENTTRIGGER_AUDIT_RETENTION` (90 days by default). Needs `admin`.",
                "operationId": "listAudit",
                "parameters": [
                    _query("target_id", {"type": "string", "maxLength": 128}),
                    _query("key_id", {"type": "string", "maxLength": 128}),
                    _query(
                        "before",
                        {"type": "string"},
                        "An RFC 3339 time with an offset (entries strictly older), or the "
                        "`next_cursor` of the previous page.",
                    ),
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": AUDIT_MAX_LIMIT,
                            "default": AUDIT_DEFAULT_LIMIT,
                        },
                    },
                ],
                "responses": {
                    "200": _json(_ref("AuditPage"), "A page, newest first."),
                    "400": _ERRORS["400"],
                    "401": _ERRORS["401"],
                },
            }
        },
    }


def _with_config_choice(schema: dict[str, Any]) -> dict[str, Any]:
    props = dict(schema["properties"])
    props["config"] = {
        "oneOf": [_ref(_CONFIG_NAMES[t]) for t in TRIGGER_TYPES],
        "description": props["config"]["description"],
    }
    return {**schema, "properties": props}


def _key_schemas() -> dict[str, Any]:
    scope = {"type": "string", "enum": list(SCOPES)}
    listed = {
        "id": {"type": "string", "description": "A ULID; `bootstrap_...` for bootstrap keys."},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": scope},
        "prefix": {"type": "string", "description": "The key's first characters."},
    }
    return {
        "KeyCreate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "scopes"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "scopes": {"type": "array", "minItems": 1, "items": scope},
                "expires_at": {
                    **_TIME,
                    "description": "RFC 3339 with an offset, in the future; null: never.",
                },
            },
        },
        "KeyCreated": {
            "type": "object",
            "required": ["id", "name", "scopes", "key", "prefix", "created_at", "expires_at"],
            "properties": {
                **listed,
                "key": {
                    "type": "string",
                    "description": "`etk_` + 52 base32 characters; shown in this answer only.",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "expires_at": _TIME,
            },
        },
        "Key": {
            "type": "object",
            "required": [*listed, "created_at", "expires_at", "last_used_at", "bootstrap"],
            "properties": {
                **listed,
                "created_at": {**_TIME, "description": "null for bootstrap keys."},
                "expires_at": _TIME,
                "last_used_at": {
                    **_TIME,
                    "description": "Written within 5 s of first use, then at most once a "
                    "minute (null for bootstrap keys).",
                },
                "bootstrap": {"type": "boolean"},
            },
        },
        "KeySelf": {
            "type": "object",
            "required": [*listed, "bootstrap"],
            "properties": {**listed, "bootstrap": {"type": "boolean"}},
        },
    }


def _key_paths() -> dict[str, Any]:
    key_id = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/keys": {
            "post": {
                "summary": "Create an API key (the key is in this answer only)",
                "operationId": "createKey",
                "requestBody": {"required": True, **_json(_ref("KeyCreate"), "")},
                "responses": {"201": _json(_ref("KeyCreated"), "Created."), **_ERRORS},
            },
            "get": {
                "summary": "List API keys: managed ones not revoked, and bootstrap ones",
                "operationId": "listKeys",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Key")}},
                        },
                        "The keys.",
                    ),
                    "401": _ERRORS["401"],
                },
            },
        },
        "/api/v1/keys/self": {
            "get": {
                "summary": "The key this request is made with",
                "operationId": "getOwnKey",
                "responses": {
                    "200": _json(_ref("KeySelf"), "The calling key."),
                    "401": _ERRORS["401"],
                },
            }
        },
        "/api/v1/keys/{key_id}": {
            "delete": {
                "summary": "Revoke an API key, for good; every process refuses it within 1 s",
                "operationId": "revokeKey",
                "parameters": [key_id],
                "responses": {
                    "204": {"description": "Revoked."},
                    "401": _ERRORS["401"],
                    "404": _problem("No such key (or revoked already)."),
                    "409": _problem("A bootstrap key: configuration, not revocable here."),
                },
            }
        },
    }


def _with_scopes(document: dict[str, Any]) -> dict[str, Any]:
    """Each guarded operation states the scope it needs (auth.ROUTE_SCOPES, the table the
    guard enforces): as its security requirement and as `x-required-scope`."""
    for (method, path), scope in ROUTE_SCOPES.items():
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue
        roles = [] if scope == ANY_KEY else [scope]
        operation["security"] = [{"bearer": roles}, {"apiKey": roles}]
        operation["x-required-scope"] = scope
        operation.setdefault("responses", {}).setdefault("401", _ERRORS["401"])
        if scope != ANY_KEY:
            operation["responses"].setdefault(
                "403", _problem(f"The key lacks the scope {scope} (`admin` holds every scope).")
            )
    return document


def openapi_document(public_url: str) -> dict[str, Any]:
    return _with_scopes(_document(public_url))


def _document(public_url: str) -> dict[str, Any]:
    components: dict[str, Any] = {_CONFIG_NAMES[k]: v for k, v in CONFIG_SCHEMAS.items()}
    components |= _event_schemas()
    components |= _audit_schemas()
    components |= _key_schemas()
    components |= {
        "TriggerCreate": _with_config_choice(TRIGGER_CREATE),
        "TriggerPatch": _with_config_choice(TRIGGER_PATCH),
        "Trigger": {
            "type": "object",
            "required": [
                "id",
                "name",
                "type",
                "status",
                "config",
                "signing_secret",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "id": {"type": "string", "description": "Unguessable, time-ordered (ULID)."},
                "name": {"type": "string"},
                "type": {"enum": list(TRIGGER_TYPES)},
                "status": {"enum": ["active", "paused", "completed"]},
                "config": {
                    "oneOf": [_ref(_CONFIG_NAMES[t]) for t in TRIGGER_TYPES],
                    "description": "Normalised: defaults filled in, `run_in` resolved to "
                    "`run_at`, times in UTC.",
                },
                "webhook_url": {
                    "type": "string",
                    "description": "Webhook triggers only: `{PUBLIC_URL}/api/v1/webhook/{token}`, "
                    "a random token unrelated to the id (the URL is the secret).",
                },
                "signing_secret": {"type": "string", "description": "`whsec_...`"},
                "next_fire_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "Scheduled triggers only; null when none is pending. "
                    "With `config.jitter`, the next occurrence's nominal time plus its offset.",
                },
                "paused_reason": {
                    "type": ["string", "null"],
                    "description": "Scheduled triggers only: why the platform paused the "
                    "trigger (`config.auto_pause_after`); null otherwise. Resuming clears it.",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "TriggerPage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("Trigger")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "EventId": {
            "type": "object",
            "required": ["event_id"],
            "properties": {"event_id": {"type": "string"}},
        },
        "TestRunResult": {
            "type": "object",
            "required": ["event_id", "signing_secret"],
            "properties": {
                "event_id": {"type": "string"},
                "signing_secret": {"type": "string", "description": "Signs this one delivery."},
            },
        },
        "SecretRotation": SECRET_ROTATION,
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        },
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    trigger_ok = _json(_ref("Trigger"), "The trigger.")
    not_found = _problem("No such trigger.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eventtrigger",
            "version": __version__,
            "description": "Call an HTTP endpoint at a time, on a schedule, or when a webhook "
            "arrives.",
        },
        "servers": [{"url": public_url}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": security,
        "paths": {
            "/api/v1/triggers": {
                "post": {
                    "summary": "Create a trigger",
                    "operationId": "createTrigger",
                    "requestBody": {"required": True, **_json(_ref("TriggerCreate"), "")},
                    "responses": {"201": _json(_ref("Trigger"), "Created."), **_ERRORS},
                },
                "get": {
                    "summary": "List triggers, newest first",
                    "operationId": "listTriggers",
                    "parameters": [
                        {
                            "name": "type",
                            "in": "query",
                            "schema": {"enum": list(TRIGGER_TYPES)},
                        },
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"enum": ["active", "paused", "completed"]},
                        },
                        _LIMIT,
                        _CURSOR,
                    ],
                    "responses": {
                        "200": _json(_ref("TriggerPage"), "A page."),
                        "400": _ERRORS["400"],
                        "401": _ERRORS["401"],
                    },
                },
            },
            "/api/v1/triggers/{trigger_id}": {
                "parameters": [_ID_PARAM],
                "get": {
                    "summary": "Get a trigger",
                    "operationId": "getTrigger",
                    "responses": {"200": trigger_ok, "401": _ERRORS["401"], "404": not_found},
                },
                "patch": {
                    "summary": "Update name, status (pause/resume) or the whole config",
                    "operationId": "updateTrigger",
                    "requestBody": {"required": True, **_json(_ref("TriggerPatch"), "")},
                    "responses": {"200": trigger_ok, **_ERRORS, "404": not_found},
                },
                "delete": {
                    "summary": "Delete a trigger and its pending occurrences (event logs stay)",
                    "operationId": "deleteTrigger",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": _ERRORS["401"],
                        "404": not_found,
                    },
                },
            },
            "/api/v1/triggers/{trigger_id}/test": {
                "parameters": [_ID_PARAM],
                "post": {
                    "summary": "Fire a saved trigger once now, as a test (schedule untouched)",
                    "operationId": "testTrigger",
                    "requestBody": {"required": False, **_json(TRIGGER_TEST, "")},
                    "responses": {
                        "202": _json(_ref("EventId"), "Fired."),
                        **_ERRORS,
                        "404": not_found,
                    },
                },
            },
            "/api/v1/test-runs": {
                "post": {
                    "summary": "Fire an unsaved trigger definition once (nothing persisted)",
                    "operationId": "testRun",
                    "requestBody": {
                        "required": True,
                        **_json(_with_config_choice(TEST_RUN), ""),
                    },
                    "responses": {"202": _json(_ref("TestRunResult"), "Fired."), **_ERRORS},
                },
            },
            "/api/v1/triggers/{trigger_id}/rotate-webhook-url": {
                "parameters": [_ID_PARAM],
                "post": {
                    "summary": "New webhook URL for a webhook trigger (the old one is 404 at once)",
                    "operationId": "rotateWebhookUrl",
                    "responses": {
                        "200": _json(_ref("Trigger"), "The trigger, with its new `webhook_url`."),
                        "401": _ERRORS["401"],
                        "404": not_found,
                        "409": _problem("Not a webhook trigger."),
                    },
                },
            },
            "/api/v1/triggers/{trigger_id}/rotate-secret": {
                "parameters": [_ID_PARAM],
                "post": {
                    "summary": "Rotate the signing secret; the previous one also signs for `grace`",
                    "description": "Until `previous_secret_expires_at` every delivery of the "
                    "trigger carries two signatures in one `webhook-signature` header, "
                    "`v1,<new> v1,<previous>`; afterwards only the new one. Deliveries "
                    "fired before the rotation keep the secret they fired with.",
                    "operationId": "rotateSigningSecret",
                    "requestBody": {"required": False, **_json(ROTATE_SECRET, "")},
                    "responses": {
                        "200": _json(_ref("SecretRotation"), "Rotated."),
                        **_ERRORS,
                        "404": not_found,
                    },
                },
            },
            "/api/v1/webhook/{token}": {
                "parameters": [
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The last segment of the trigger's `webhook_url`.",
                    },
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "A repeat within the retention "
                        "window answers 200 with the first event_id; another body gets 422.",
                    },
                ],
                "post": {
                    "summary": "Fire a webhook trigger with a JSON payload (no API key)",
                    "operationId": "fireWebhook",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        **_json({}, "Any JSON valid against the trigger's schema."),
                    },
                    "responses": {
                        "202": _json(_ref("EventId"), "Accepted."),
                        "200": _json(_ref("EventId"), "A repeated Idempotency-Key."),
                        "400": _problem("Not valid against the schema; `errors` has the paths."),
                        "404": _problem("No such webhook trigger."),
                        "409": _problem("The trigger is paused."),
                        "413": _ERRORS["413"],
                        "415": _ERRORS["415"],
                        "422": _problem("Idempotency-Key reused with another body."),
                        "429": {
                            **_problem(
                                "A rate limit: the trigger's `config.ingest_rate_limit`, or "
                                "EVENTTRIGGER_INGEST_IP_RATE for the calling address. Nothing "
                                "was stored."
                            ),
                            "headers": {
                                "Retry-After": {
                                    "schema": {"type": "integer", "minimum": 1},
                                    "description": "Seconds to wait (whole, rounded up).",
                                }
                            },
                        },
                    },
                },
            },
            **_event_paths(),
            **_console_paths(),
            **_audit_paths(),
            **_key_paths(),
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1."}},
                }
            },
            "/docs": {
                "get": {
                    "summary": "Swagger UI",
                    "security": [],
                    "responses": {"200": {"description": "HTML."}},
                }
            },
            "/health": {
                "get": {
                    "summary": "Readiness",
                    "security": [],
                    "responses": {
                        "200": {"description": "All roles and dependencies fine."},
                        "503": {"description": "Something is not."},
                    },
                }
            },
            "/health/live": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "The process runs."}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "Prometheus text format."}},
                }
            },
        },
    }
