"""Replay endpoints: one event, or every event matching filters, sent again.

A replay is fired like a webhook call: its event row is committed first, the answer
goes out, and the job is published after in the background; a publish that never
happens is made good by the re-publisher when the row's deadline passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.bus import BackgroundPublisher
from eventtrigger.domain import replay
from eventtrigger.domain.audit import AuditEntry, bulk_replay_fields, bulk_replay_target
from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.jobs import NewEvent, event_dict, job_message
from eventtrigger.domain.retention import Windows
from eventtrigger.domain.schemas import REPLAY_BULK
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.domain.times import FAR_FUTURE, parse_rfc3339
from eventtrigger.domain.validation import BodyValidator
from eventtrigger.ids import looks_like_id, new_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.audit import entry_for
from eventtrigger.roles.api.http import json_response, read_json
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import audit as audit_log
from eventtrigger.store import eventlog, intake
from eventtrigger.store.db import Row, retry_conflicts
from eventtrigger.store.eventlog import EventFilter
from eventtrigger.store.triggers import TriggerStore

_BULK = BodyValidator(REPLAY_BULK)


class ReplayRoutes:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.windows = Windows(res.settings.retention_active, res.settings.retention_total)
        self.triggers = TriggerStore(res.db)
        self.background = BackgroundPublisher(res.jobs) if res.publisher is not None else None

    async def one(self, request: Request) -> Response:
        """Replay one event, from either view; 404 once it is past the total window."""
        event_id = request.path_params["event_id"]
        row = (
            await eventlog.replay_source(self.res.db, event_id) if looks_like_id(event_id) else None
        )
        if row is None or self.windows.view_of(row["fired_at"], self.res.clock.now()) is None:
            raise Problem(404, f"No event with id {event_id!r}.")
        if not replay.replayable(row):
            raise Problem(
                409, "This event was never sent (its schedule failed); nothing to replay."
            )
        [new] = await self._replay(
            [row], lambda now: entry_for(request, "event.replay", event_id, [], now), request
        )
        return json_response({"event_id": new}, 202)

    async def bulk(self, request: Request) -> Response:
        """Replay the events matching the filters, oldest first."""
        body = await read_json(request, self.res.settings.max_body_bytes, optional=True)
        errors = _BULK.errors(body) or replay.bulk_errors(body)
        if errors:
            raise Problem(400, "The request has invalid fields.", errors)
        since, until = _time(body, "since"), _time(body, "until")
        if since is not None and until is not None and until <= since:
            raise Problem(
                400, "The request has invalid fields.", [FieldError("until", "must be after since")]
            )
        trigger_id = body.get("trigger_id")

        def audit(now: datetime) -> AuditEntry:
            target, fields = bulk_replay_target(body), bulk_replay_fields(body)
            return entry_for(request, "events.bulk_replay", target, fields, now)

        if trigger_id is not None and not looks_like_id(trigger_id):
            # Not one of our ids, so nothing matches (and a non-ASCII one must never reach
            # the ASCII column: a collation error there would be a 503).
            return json_response({"event_ids": await self._replay([], audit, request)}, 202)
        now = self.res.clock.now()
        lower = self.windows.kept_since(now)
        rows = await eventlog.replay_sources(
            self.res.db,
            lower=lower if since is None else max(lower, since),
            upper=until or FAR_FUTURE,
            where=EventFilter(trigger_id=trigger_id, status=body.get("status")),
            limit=int(body.get("limit", replay.DEFAULT_BULK)),
        )
        sendable = [r for r in rows if replay.replayable(r)]  # schedule errors: skipped
        return json_response({"event_ids": await self._replay(sendable, audit, request)}, 202)

    async def _replay(
        self, originals: Sequence[Row], audit: Callable[[datetime], AuditEntry], request: Request
    ) -> list[str]:
        """Store one replay per original and the call's audit row in one transaction, then
        publish them. A bulk replay that matched nothing is audited too: it was asked."""
        keys = await self._keys({r["trigger_id"] for r in originals if r["trigger_id"]})
        now = self.res.clock.now()
        events = [
            replay.replay_event(
                row,
                event_id=new_id(now),
                now=now,
                deadline=now + self.res.settings.recovery_after,
                keys=keys.get(row["trigger_id"]),
            )
            for row in originals
        ]

        async def store() -> None:
            async with self.res.db.transaction() as tx:
                if events:
                    await intake.insert(tx, [intake.Call(e) for e in events], now)
                await audit_log.record(tx, audit(now))

        await retry_conflicts(store)
        if self.background is not None and events:
            self.background.send([job_message(event_dict(e)) for e in events])
        self.res.metrics.replays.inc(len(events))
        if self.res.tracing is not None:
            stored, caller = self.res.clock.now(), request.headers.get("traceparent")
            for event in events:
                self.res.tracing.event(event, stored, caller=caller)
        for event in events:
            _log(event)
        return [e.id for e in events]

    async def _keys(self, trigger_ids: set[str]) -> dict[str, SigningKeys]:
        """Current signing keys of the triggers that still exist."""
        found: dict[str, SigningKeys] = {}
        for trigger_id in sorted(trigger_ids):
            record = await self.triggers.get(trigger_id)
            if record is not None:
                found[trigger_id] = record.signing
        return found


def _log(event: NewEvent) -> None:
    logger.bind(
        action="replayed",
        trigger_id=event.trigger_id,
        event_id=event.id,
        replay_of=event.replay_of,
        attempt=1,
        source=event.source,
    ).info("replayed")


def _time(body: dict[str, Any], name: str) -> datetime | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(str(raw))
    except ValueError:
        raise Problem(
            400,
            "The request has invalid fields.",
            [FieldError(name, "expected RFC 3339 with an offset")],
        ) from None
