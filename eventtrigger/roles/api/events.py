"""Event log endpoints: list (active or archived view), one event, per-trigger aggregate,
an event's attempts.

The event detail shows the request's body as sent without storing it per attempt: the
worker sends `request_body` of the job, which is built from the stored payload, and the
same function rebuilds it here from the same payload. On MariaDB the payload is kept as
the text it was written as, and orjson reads back exactly what it wrote, so the text is
exact. (On MySQL, JSON columns are normalised: a first attempt sent before the row was
read back may have had another key order; each attempt's `request.body_sha256` says
whether the text shown is the one it sent.)

`events:read` must not show what needs `triggers:read`: URLs are shown with `shown_url`
and each attempt's recorded headers are masked again by today's `sensitive` rule on the
way out, so rows recorded under a narrower rule are answered as masked as new ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.delivery import MASK, sensitive, shown_url
from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.jobs import request_body
from eventtrigger.domain.retention import Windows
from eventtrigger.domain.times import iso, parse_rfc3339
from eventtrigger.ids import looks_like_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import (
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
    json_response,
    query_choice,
    query_limit,
)
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import aggregate, eventlog
from eventtrigger.store.db import Row
from eventtrigger.store.eventlog import ARCHIVE, HOT, EventFilter

STATUSES = ("pending", "retrying", "success", "failure")
SOURCES = ("api", "scheduled", "manual-test", "replay")


def event_json(row: Row, view: str) -> dict[str, Any]:
    def t(key: str) -> str | None:
        return None if row[key] is None else iso(row[key])

    return {
        "id": row["id"],
        "trigger_id": row["trigger_id"],
        "trigger_type": row["trigger_type"],
        "source": row["source"],
        "is_test_run": row["is_test_run"],
        "note": row["note"],
        "replay_of": row["replay_of"],
        "scheduled_at": t("scheduled_at"),
        "fired_at": t("fired_at"),
        "payload": row["payload"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "delivered_at": t("delivered_at"),
        "retention": view,
        "created_at": t("created_at"),
        "updated_at": t("updated_at"),
    }


def sent_request_json(row: Row) -> dict[str, Any]:
    """The request an event's attempts send: method, URL and the body as the exact text
    the worker sends (None for GET and DELETE)."""
    snapshot = row["request"]
    body = request_body({"method": snapshot["method"], "body": row["payload"]})
    return {
        "method": snapshot["method"],
        "url": shown_url(snapshot["url"]),
        "body": None if body is None else body.decode(),
    }


def masked_headers(headers: Any) -> Any:
    """Recorded headers with every value `sensitive` masks masked (None stays None)."""
    if not isinstance(headers, dict):
        return headers
    return {name: MASK if sensitive(name) else value for name, value in headers.items()}


def attempt_request_json(stored: Any) -> Any:
    """An attempt's recorded request (None for rows from before it was kept), its URL and
    headers masked by the current rules (masking is idempotent)."""
    if not isinstance(stored, dict):
        return stored
    shown = dict(stored)
    if isinstance(shown.get("url"), str):
        shown["url"] = shown_url(shown["url"])
    shown["headers"] = masked_headers(shown.get("headers"))
    return shown


def attempt_json(row: Row) -> dict[str, Any]:
    nxt = row["next_attempt_at"]
    return {
        "attempt": row["attempt"],
        "started_at": iso(row["started_at"]),
        "duration_ms": row["duration_ms"],
        "status_code": row["status_code"],
        "error": row["error"],
        "response_body": row["response_body"],
        "next_attempt_at": None if nxt is None else iso(nxt),
        "request": attempt_request_json(row["request"]),
        "response_headers": masked_headers(row["response_headers"]),
    }


class EventRoutes:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.windows = Windows(res.settings.retention_active, res.settings.retention_total)

    async def list(self, request: Request) -> Response:
        if request.query_params.get("aggregate") is not None:
            return await self._aggregate(request)
        view = query_choice(request, "view", ("active", "archived")) or "active"
        test_flag = query_choice(request, "is_test_run", ("true", "false"))
        trigger_id = request.query_params.get("trigger_id") or None
        where = EventFilter(
            trigger_id=trigger_id,
            status=query_choice(request, "status", STATUSES),
            source=query_choice(request, "source", SOURCES),
            is_test_run=None if test_flag is None else test_flag == "true",
        )
        limit = query_limit(request)
        cursor = decode_cursor(request)
        now = self.res.clock.now()
        lower, upper = self.windows.bounds(view, now)
        lower, upper = self._range(request, lower, upper)
        if trigger_id is not None and not looks_like_id(trigger_id):
            # No event can name an id we never make; asking the database would only risk
            # a collation error on odd bytes (a 503 that is not the database's fault).
            return json_response({"items": [], "next_cursor": None})
        # Views come from fired_at, not from where a row lives: archived events may still
        # sit in the hot table (a late mover, or still retrying), and a retention process
        # whose clock runs ahead may already have moved events that are active by ours.
        rows = await eventlog.page(
            self.res.db,
            tables=(HOT, ARCHIVE),
            lower=lower,
            upper=upper,
            where=where,
            after=cursor,
            limit=limit + 1,
        )
        page = rows[:limit]
        more = len(rows) > limit
        return json_response(
            {
                "items": [event_json(r, view) for r in page],
                "next_cursor": (
                    encode_cursor(page[-1]["fired_at"], page[-1]["id"]) if more and page else None
                ),
            }
        )

    def _range(
        self, request: Request, lower: datetime, upper: datetime | None
    ) -> tuple[datetime, datetime | None]:
        """Narrow the view's bounds with `since` (inclusive) and `until` (exclusive)."""
        for name in ("since", "until"):
            raw = request.query_params.get(name)
            if not raw:
                continue
            try:
                value = parse_rfc3339(raw)
            except (ValueError, OverflowError):
                raise Problem(
                    400,
                    "Invalid query parameter.",
                    [FieldError(name, "expected RFC 3339 with an offset")],
                ) from None
            if name == "since":
                lower = max(lower, value)
            else:
                upper = value if upper is None else min(upper, value)
        return lower, upper

    async def _aggregate(self, request: Request) -> Response:
        if request.query_params["aggregate"] != "trigger":
            raise Problem(
                400,
                "Invalid query parameter.",
                [FieldError("aggregate", "the only aggregate is 'trigger'")],
            )
        limit = query_limit(request)
        before_id = decode_id_cursor(request)
        since = self.windows.kept_since(self.res.clock.now())
        items = await aggregate.page(self.res.db, since=since, before_id=before_id, limit=limit + 1)
        page = items[:limit]
        for item in page:
            item["last_fired_at"] = iso(item["last_fired_at"])
        more = len(items) > limit
        return json_response(
            {
                "items": page,
                "next_cursor": encode_id_cursor(page[-1]["trigger_id"]) if more and page else None,
            }
        )

    async def get(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        row = await eventlog.find(self.res.db, event_id) if looks_like_id(event_id) else None
        view = None if row is None else self.windows.view_of(row["fired_at"], self.res.clock.now())
        if row is None or view is None:
            raise Problem(404, f"No event with id {event_id!r}.")
        return json_response({**event_json(row, view), "request": sent_request_json(row)})

    async def attempts(self, request: Request) -> Response:
        """An event's delivery attempts, oldest first; 404 exactly when GET of the event is
        (the history lives and dies with its event)."""
        event_id = request.path_params["event_id"]
        row = await eventlog.find(self.res.db, event_id) if looks_like_id(event_id) else None
        if row is None or self.windows.view_of(row["fired_at"], self.res.clock.now()) is None:
            raise Problem(404, f"No event with id {event_id!r}.")
        items = await eventlog.attempts(self.res.db, event_id)
        return json_response({"items": [attempt_json(a) for a in items]})
