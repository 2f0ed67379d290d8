"""JSON Schemas of the API's request bodies: the one source for validation and OpenAPI.

Structure (types, required and unknown fields, enums, lengths) is checked against these
with jsonschema-rs; what JSON Schema cannot say well (cron syntax, time zones, durations,
time order, SSRF) is checked in `domain/triggers.py`. `roles/api/openapi.py` embeds these
very dicts, so the document cannot drift from what the API accepts.
"""

from __future__ import annotations

from typing import Any

TRIGGER_TYPES = ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled")
SCHEDULED_TYPES = ("time_scheduled", "cron_scheduled", "interval_scheduled")
METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
Schema = dict[str, Any]

DURATION: Schema = {
    "type": ["string", "number"],
    "description": "`250ms`, `10s`, `5m`, `2h`, `1d`, or a number of seconds.",
    "examples": ["10s"],
}
TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 with an offset, e.g. `2025-10-15T14:00:00Z`.",
}
RETRY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "Missing fields take the defaults shown.",
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
        "initial_delay": {**DURATION, "default": "2s", "description": "At least 100ms."},
        "max_delay": {**DURATION, "default": "5m"},
    },
}
_COMMON: dict[str, Schema] = {
    "endpoint": {
        "type": "string",
        "minLength": 1,
        "maxLength": 2048,
        "description": "http(s) URL the request is sent to.",
    },
    "method": {"enum": list(METHODS), "default": "POST"},
    "headers": {
        "type": "object",
        "maxProperties": 50,
        "additionalProperties": {"type": "string", "maxLength": 8192},
        "description": "Extra request headers (string values).",
    },
    "timeout": {**DURATION, "default": "10s", "description": "100ms to 2m."},
    "retry": RETRY,
}
_PAYLOAD: Schema = {"description": "Any JSON; sent as the request body.", "default": None}
# Scheduling policies (scheduled types; contract v1.1). Absent fields take the defaults.
_POLICIES: dict[str, Schema] = {
    "misfire": {
        "enum": ["fire_once", "skip", "fire_all"],
        "default": "fire_once",
        "description": "For an occurrence found more than misfire_grace late (e.g. after an "
        "outage): `fire_once` fires the latest missed occurrence once, `skip` fires none of "
        "them, `fire_all` fires each missed occurrence (the first 100); then the schedule "
        "continues with the next future occurrence.",
    },
    "misfire_grace": {**DURATION, "default": "60s", "description": "0s to 1d."},
    "auto_pause_after": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 1000,
        "default": None,
        "description": "Pause the trigger after this many consecutive final delivery "
        "failures of its scheduled events (`paused_reason` says why).",
    },
}
_JITTER: Schema = {
    **DURATION,
    "default": "0s",
    "description": "Each occurrence fires at a fixed pseudo-random offset in [0, jitter) "
    "after its nominal time, derived from the trigger id and that time. At most half of "
    "`every` (interval) or 1h (cron).",
}


INGEST_RATE_LIMIT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["per_second", "burst"],
    "description": "Webhook triggers only; absent: no limit of the trigger's own. Calls "
    "beyond it are answered 429 with Retry-After (whole seconds) and stored nowhere. "
    "Counted in each api process: N api replicas allow up to N times this rate.",
    "properties": {
        "per_second": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1_000_000,
            "description": "Calls a second, sustained (0.5: one every two seconds).",
        },
        "burst": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000,
            "description": "Calls accepted at once after a quiet spell.",
        },
    },
}


def _config(specific: dict[str, Schema], required: list[str], description: str) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["endpoint", *required],
        "description": description,
        "properties": {**_COMMON, **specific},
    }


CONFIG_SCHEMAS: dict[str, Schema] = {
    "webhook": _config(
        {
            "schema": {"type": "object", "description": "JSON Schema (draft 4 to 2020-12)."},
            "ingest_rate_limit": INGEST_RATE_LIMIT,
        },
        ["schema"],
        "Fires when JSON that passes `schema` is POSTed to the trigger's webhook URL.",
    ),
    "time_scheduled": _config(
        {
            "run_at": TIMESTAMP,
            "run_in": {**DURATION, "writeOnly": True},
            "payload": _PAYLOAD,
            **_POLICIES,
        },
        [],
        "Fires once, at `run_at`, or `run_in` after saving (exactly one of the two).",
    ),
    "cron_scheduled": _config(
        {
            "cron": {
                "type": "string",
                "maxLength": 200,
                "description": "5 fields, or 6 with seconds first (`*/10 * * * * *`).",
            },
            "timezone": {"type": "string", "default": "UTC", "description": "IANA zone."},
            "start_at": TIMESTAMP,
            "end_at": TIMESTAMP,
            "payload": _PAYLOAD,
            **_POLICIES,
            "jitter": _JITTER,
        },
        ["cron"],
        "Fires on a cron schedule in a time zone.",
    ),
    "interval_scheduled": _config(
        {
            "every": {**DURATION, "description": "At least 1s."},
            "start_at": {**TIMESTAMP, "description": "Anchor; defaults to the creation time."},
            "end_at": TIMESTAMP,
            "payload": _PAYLOAD,
            **_POLICIES,
            "jitter": _JITTER,
        },
        ["every"],
        "Fires at start_at + k*every.",
    ),
}

TRIGGER_CREATE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "config"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "type": {"enum": list(TRIGGER_TYPES)},
        "status": {"enum": ["active", "paused"], "default": "active"},
        "config": {"type": "object", "description": "The config of `type` (see *Config)."},
    },
}
TRIGGER_PATCH: Schema = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "name": TRIGGER_CREATE["properties"]["name"],
        "status": TRIGGER_CREATE["properties"]["status"],
        "config": {"type": "object", "description": "The whole config, of the trigger's type."},
    },
}
TRIGGER_TEST: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"payload": {"description": "Replaces the configured payload."}},
}
TEST_RUN: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "config"],
    "properties": {
        "name": TRIGGER_CREATE["properties"]["name"],
        "type": TRIGGER_CREATE["properties"]["type"],
        "config": TRIGGER_CREATE["properties"]["config"],
        "payload": {"description": "Wins over config.payload."},
    },
}
ROTATE_SECRET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "grace": {
            **DURATION,
            "default": "24h",
            "description": "0s to 7d: how long the previous secret keeps signing too.",
        },
    },
}
SECRET_ROTATION: Schema = {
    "type": "object",
    "required": ["signing_secret", "previous_secret_expires_at"],
    "properties": {
        "signing_secret": {"type": "string", "description": "The new `whsec_...` secret."},
        "previous_secret_expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "Until then deliveries carry a second signature, made with the "
            "previous secret.",
        },
    },
}
REPLAY_BULK: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "At least one of trigger_id, status, since, until. Events in the kept "
    "window (active and archived) that match every filter given are replayed, oldest first.",
    "properties": {
        "trigger_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "status": {"enum": ["pending", "retrying", "success", "failure"]},
        "since": {**TIMESTAMP, "description": "Fired at or after (inclusive)."},
        "until": {**TIMESTAMP, "description": "Fired before (exclusive)."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
}
