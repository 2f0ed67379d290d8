"""Trigger management endpoints: create, get, list, update (incl. pause/resume), delete,
and rotation of a webhook trigger's URL and of a trigger's signing secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain.audit import AuditEntry, changed_fields, created_fields, patch_action
from eventtrigger.domain.errors import FieldError, InvalidInput
from eventtrigger.domain.jobs import MAX_JOB_BYTES, job_bytes, request_snapshot
from eventtrigger.domain.schemas import ROTATE_SECRET, SCHEDULED_TYPES, TRIGGER_TYPES
from eventtrigger.domain.signing import SigningKeys, new_webhook_token, parse_grace
from eventtrigger.domain.times import iso
from eventtrigger.domain.triggers import (
    Limits,
    PatchPlan,
    first_fire,
    plan_patch,
    validate_create,
    validate_patch,
)
from eventtrigger.domain.validation import BodyValidator
from eventtrigger.ids import looks_like_id, new_id, new_signing_secret
from eventtrigger.resources import Resources
from eventtrigger.roles.api.audit import entry_for
from eventtrigger.roles.api.http import (
    decode_cursor,
    encode_cursor,
    json_response,
    query_choice,
    query_limit,
    read_json,
)
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store.db import Row
from eventtrigger.store.triggers import TriggerRecord, TriggerStore, apply_patch

_ROTATE_SECRET = BodyValidator(ROTATE_SECRET)


def limits(res: Resources) -> Limits:
    return Limits(egress_allow=res.settings.egress, retention_active=res.settings.retention_active)


def trigger_json(record: TriggerRecord, public_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "type": record.type,
        "status": record.status,
        "config": record.config,
    }
    if record.type == "webhook" and record.webhook_token is not None:
        body["webhook_url"] = f"{public_url}/api/v1/webhook/{record.webhook_token}"
    body["signing_secret"] = record.signing_secret
    if record.type in SCHEDULED_TYPES:
        body["next_fire_at"] = None if record.next_fire_at is None else iso(record.next_fire_at)
        body["paused_reason"] = record.paused_reason  # set by auto-pause; resuming clears it
    body["created_at"] = iso(record.created_at)
    body["updated_at"] = iso(record.updated_at)
    return body


_SECRET_SHAPE = "whsec_" + "A" * 44  # sizes a job before the real secret exists
# The largest a job's keys get: during a rotation it carries the previous secret too.
_KEYS_SHAPE = SigningKeys(_SECRET_SHAPE, _SECRET_SHAPE, datetime(2000, 1, 1, 0, 0, 0, 1, UTC))


def check_job_size(config: dict[str, Any]) -> None:
    """400 if firings of this config would make jobs too large for Kafka."""
    size = job_bytes(config.get("payload"), request_snapshot(config, _KEYS_SHAPE))
    if size > MAX_JOB_BYTES:
        field = "config.payload" if config.get("payload") is not None else "config.headers"
        raise Problem(400, "The request has invalid fields.", [
            FieldError(field, f"makes each job {size} bytes; at most {MAX_JOB_BYTES} fit")
        ])  # fmt: skip


def _invalid(exc: InvalidInput) -> Problem:
    return Problem(400, exc.detail, exc.errors)


async def _existing(store: TriggerStore, trigger_id: str) -> TriggerRecord:
    record = await store.get(trigger_id) if looks_like_id(trigger_id) else None
    if record is None:
        raise Problem(404, f"No trigger with id {trigger_id!r}.")
    return record


class TriggerRoutes:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.store = TriggerStore(res.db)

    async def create(self, request: Request) -> Response:
        settings = self.res.settings
        body = await read_json(request, settings.max_body_bytes)
        now = self.res.clock.now()
        try:
            new = validate_create(body, now, limits(self.res))
        except InvalidInput as exc:
            raise _invalid(exc) from None
        check_job_size(new.config)
        trigger_id = new_id(now)
        fields = created_fields(new.config)
        record = await self.store.create(
            trigger_id=trigger_id,
            name=new.name,
            kind=new.type,
            status=new.status,
            config=new.config,
            signing_secret=new_signing_secret(),
            webhook_token=new_webhook_token() if new.type == "webhook" else None,
            first_fire=first_fire(new.type, new.config, now)
            if new.type in SCHEDULED_TYPES
            else None,
            now=now,
            audit=entry_for(request, "trigger.create", trigger_id, fields, now),
        )
        location = f"/api/v1/triggers/{trigger_id}"
        return json_response(trigger_json(record, settings.public_url), 201, {"Location": location})

    async def list(self, request: Request) -> Response:
        kind = query_choice(request, "type", TRIGGER_TYPES)
        status = query_choice(request, "status", ("active", "paused", "completed"))
        limit = query_limit(request)
        cursor = decode_cursor(request)
        records = await self.store.list(kind=kind, status=status, after=cursor, limit=limit + 1)
        page = records[:limit]
        more = len(records) > limit
        return json_response(
            {
                "items": [trigger_json(r, self.res.settings.public_url) for r in page],
                "next_cursor": (
                    encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
                ),
            }
        )

    async def get(self, request: Request) -> Response:
        record = await _existing(self.store, request.path_params["trigger_id"])
        return json_response(trigger_json(record, self.res.settings.public_url))

    async def patch(self, request: Request) -> Response:
        settings = self.res.settings
        trigger_id = request.path_params["trigger_id"]
        await _existing(self.store, trigger_id)  # 404 before any complaint about the body
        body = await read_json(request, settings.max_body_bytes)

        def decide(row: Row, now: datetime) -> PatchPlan:
            """Validated and planned under the row lock, with `now` read under it too."""
            try:
                patch = validate_patch(body, row["type"], now, limits(self.res))
                if patch.config is not None:
                    check_job_size(patch.config)
                return plan_patch(
                    kind=row["type"],
                    name=row["name"],
                    status=row["status"],
                    config=row["config"],
                    version=int(row["version"]),
                    patch=patch,
                    now=now,
                )
            except InvalidInput as exc:
                raise _invalid(exc) from None

        def audit(row: Row, plan: PatchPlan, now: datetime) -> AuditEntry:
            """Signed with the fields the PATCH changed (names), under the same lock."""
            after = {"name": plan.name, "status": plan.status, "config": plan.config}
            changed = changed_fields(row, after)
            action = patch_action(row["status"], plan.status, changed)
            return entry_for(request, action, trigger_id, changed, now)

        record = await apply_patch(self.res.db, trigger_id, decide, self.res.clock, audit)
        if record is None:
            raise Problem(404, f"No trigger with id {trigger_id!r}.")
        return json_response(trigger_json(record, settings.public_url))

    async def delete(self, request: Request) -> Response:
        trigger_id = request.path_params["trigger_id"]
        audit = entry_for(request, "trigger.delete", trigger_id, [], self.res.clock.now())
        if not looks_like_id(trigger_id) or not await self.store.delete(trigger_id, audit):
            raise Problem(404, f"No trigger with id {trigger_id!r}.")
        return Response(status_code=204)

    async def rotate_webhook_url(self, request: Request) -> Response:
        """A new random token for a webhook trigger's URL; the old URL is 404 at once."""
        settings = self.res.settings
        trigger_id = request.path_params["trigger_id"]
        record = await _existing(self.store, trigger_id)
        if record.type != "webhook":
            raise Problem(409, f"A {record.type} trigger has no webhook URL to rotate.")
        now = self.res.clock.now()
        audit = entry_for(request, "trigger.rotate_webhook_url", trigger_id, ["webhook_url"], now)
        rotated = await self.store.set_webhook_token(trigger_id, new_webhook_token(), now, audit)
        if rotated is None:  # deleted meanwhile
            raise Problem(404, f"No trigger with id {trigger_id!r}.")
        return json_response(trigger_json(rotated, settings.public_url))

    async def rotate_secret(self, request: Request) -> Response:
        """A new signing secret; the previous one keeps signing too for `grace`."""
        settings = self.res.settings
        trigger_id = request.path_params["trigger_id"]
        await _existing(self.store, trigger_id)  # 404 before any complaint about the body
        body = await read_json(request, settings.max_body_bytes, optional=True)
        errors = _ROTATE_SECRET.errors(body)
        if errors:
            raise Problem(400, "The request has invalid fields.", errors)
        try:
            grace = parse_grace(body)
        except InvalidInput as exc:
            raise _invalid(exc) from None
        now = self.res.clock.now()
        secret = new_signing_secret()
        audit = entry_for(
            request,
            "trigger.rotate_secret",
            trigger_id,
            ["signing_secret", "previous_signing_secret", "previous_secret_expires_at"],
            now,
        )
        rotated = await self.store.rotate_secret(trigger_id, secret, now + grace, now, audit)
        if rotated is None:  # deleted meanwhile
            raise Problem(404, f"No trigger with id {trigger_id!r}.")
        return json_response(
            {"signing_secret": secret, "previous_secret_expires_at": iso(now + grace)}
        )
