"""Firing from the API: webhook calls and test runs.

Each call's event row (and, for webhooks, its Idempotency-Key mapping) is stored by a
group commit: the calls that arrive together share one transaction. A call is answered
as soon as its row is durable; its job is published afterwards, in the background and in
batches. If that publish fails or the process dies first, the row is the truth and the
scheduler re-publishes it when its deadline passes, so a slow or absent Kafka never
holds up a webhook call.

A slow or unreachable database does not hold calls up either: each call has a budget
(`CALL_BUDGET`) for its reads and its store, and one that cannot be stored in it (or finds
the group commit's queue full) is answered 503 with Retry-After, and is then never
stored (see `eventtrigger.groupcommit`). A call whose commit has an unknown outcome is
answered 202 and stored later by `_settle` if the commit did not take.

Rate limits refuse a call (429 with Retry-After) before it costs any database write: the
per-client-address limit before anything else is done for the call, a trigger's own
`config.ingest_rate_limit` once its trigger is known. Both are counted in this process
only, so N api processes allow up to N times each rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import asyncmy
import jsonschema_rs
import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.bus import BackgroundPublisher
from eventtrigger.domain.errors import FieldError, InvalidInput, join_path
from eventtrigger.domain.jobs import (
    MAX_JOB_BYTES,
    TEST_RUN_NOTE,
    NewEvent,
    event_dict,
    job_bytes,
    job_message,
    request_snapshot,
)
from eventtrigger.domain.ratelimit import KeyedLimiter, Rate
from eventtrigger.domain.triggers import TEST, TEST_RUN_BODY, ingest_rate, normalise_config
from eventtrigger.domain.validation import depth_errors
from eventtrigger.groupcommit import Gate, GroupCommit, Refused
from eventtrigger.ids import looks_like_id, new_id, new_signing_secret
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import caller_address, json_response, read_json
from eventtrigger.roles.api.problems import Problem
from eventtrigger.roles.api.triggers import limits
from eventtrigger.store import intake
from eventtrigger.store.db import DUPLICATE_KEY, TRANSIENT_ERRORS, retry_conflicts
from eventtrigger.store.intake import Call, Intake, Key
from eventtrigger.store.triggers import TriggerRecord, TriggerStore, fingerprint

_IDEMPOTENCY_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
# Webhook URL tokens: base64url (new ones, 32 characters) or a trigger id (URLs made
# before tokens existed); anything else cannot match, so it skips the query.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{26,64}")
T = TypeVar("T")
# Seconds a call may spend on the database (its reads and its store) before it is
# answered 503; with the HTTP work around it, every call is answered within 2 s.
CALL_BUDGET = 1.5
# How long `_settle` keeps trying to store a call of unknown commit outcome.
SETTLE_FOR = 3600.0
# Buckets a process keeps (least recently used dropped, idle full ones first): client
# addresses, and triggers with an ingest_rate_limit (as many as the token cache).
ADDRESS_BUCKETS = 50_000
TRIGGER_BUCKETS = 10_000


class Unavailable(Problem):
    """503 with Retry-After: the call was not stored (and will not be); try again."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(503, detail, headers={"Retry-After": str(retry_after)})


async def _read_by(deadline: float, read: Coroutine[Any, Any, T]) -> T:
    """`read`'s result by `deadline` (loop time), or TimeoutError (a 503) at that time.

    Not `asyncio.timeout`: a cancelled wait for a pool connection first takes the pool's
    lock back, which a connect to a silent server holds for its whole connect timeout
    (5 s, then the next waiter's connect...). A read is safe to abandon, so it is left to
    unwind in the background instead.
    """
    task = asyncio.ensure_future(read)
    done, _ = await asyncio.wait((task,), timeout=max(deadline - task.get_loop().time(), 0.0))
    if not done:
        task.cancel()
        task.add_done_callback(_unwound)
        raise TimeoutError("the database did not answer in time")
    return task.result()


class RateLimited(Problem):
    """429 with Retry-After (whole seconds): a rate limit refused the call; nothing of it
    was stored."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})


def _unwound(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned read's error is no news


def _refused(exc: Refused) -> Unavailable:
    if exc.reason == "queue_full":
        return Unavailable("Too many calls are waiting to be stored; try again.", exc.retry_after)
    if exc.reason == "stalled":
        return Unavailable("The database is not answering; try again.", exc.retry_after)
    return Unavailable("The call could not be stored in time; try again.", exc.retry_after)


class ValidatorCache:
    """Compiled webhook schemas, per trigger version (an edit bumps the version)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._cache: dict[tuple[str, int], Any] = {}

    def get(self, record: TriggerRecord) -> Any:
        key = (record.id, record.version)
        validator = self._cache.get(key)
        if validator is None:
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))
            validator = jsonschema_rs.validator_for(record.config["schema"], offline=True)
            self._cache[key] = validator
        return validator


class TokenCache:
    """Active webhook triggers by URL token, so a call needs no query of its own.

    A cached record is never trusted alone: the group commit that stores the call checks
    the trigger's fingerprint (status, version, token, secrets) in the same transaction,
    and a call whose trigger changed is answered from a fresh read instead. A cache entry
    can therefore be old but never make a call land that a fresh read would refuse.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._records: dict[str, TriggerRecord] = {}

    def get(self, token: str) -> TriggerRecord | None:
        return self._records.get(token)

    def put(self, token: str, record: TriggerRecord) -> None:
        if len(self._records) >= self._size:
            self._records.pop(next(iter(self._records)))
        self._records[token] = record

    def drop(self, token: str) -> None:
        self._records.pop(token, None)


def payload_errors(validator: Any, payload: Any, root: str) -> list[FieldError]:
    deep = depth_errors(payload, root)
    if deep:
        return deep
    return [
        FieldError(join_path((root, *e.instance_path)), e.message)
        for e in validator.iter_errors(payload)
    ]


class FiringRoutes:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.store = TriggerStore(res.db)
        self.validators = ValidatorCache()
        self.writes: GroupCommit[Call, Intake] = GroupCommit(
            self._store,
            timeout=CALL_BUDGET,
            # Splitting a batch pays only for a bad item, not for a database that is away.
            split=lambda exc: not isinstance(exc, TRANSIENT_ERRORS),
            settle=self._settle,
        )
        self.background = BackgroundPublisher(res.jobs) if res.publisher is not None else None
        self.tokens = TokenCache()
        settings = res.settings
        self.address_limits: KeyedLimiter[str] | None = None
        if settings.ingest_ip_rate > 0:
            self.address_limits = KeyedLimiter(
                Rate(settings.ingest_ip_rate, settings.ingest_ip_burst), max_keys=ADDRESS_BUCKETS
            )
        self.trigger_limits: KeyedLimiter[str] = KeyedLimiter(max_keys=TRIGGER_BUCKETS)

    async def _store(self, calls: Sequence[Call], gate: Gate[Intake]) -> list[Intake]:
        async def once() -> list[Intake]:
            now = self.res.clock.now()
            async with self.res.db.transaction() as tx:
                outcomes = await intake.insert(tx, calls, now)
                # Last step before COMMIT: refused if the callers were answered already.
                gate.commit(outcomes)
                return outcomes

        return await retry_conflicts(once)

    async def _settle(self, calls: Sequence[Call], outcomes: Sequence[Intake]) -> None:
        """Store the calls answered 202 whose commit's outcome is unknown, one by one and
        by their own event ids, until the database answers: an id found stored already
        (duplicate key) means the commit did take."""
        log = logger.bind(action="intake_settle")
        pending = [c for c, o in zip(calls, outcomes, strict=True) if o == "stored"]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + SETTLE_FOR
        delay = 0.5
        while pending:
            left = []
            for call in pending:
                # No fingerprint check: the call was answered 202 already and must land.
                alone = Call(call.event, call.key)
                try:
                    outcome = (await self._store([alone], Gate()))[0]
                except asyncmy.errors.IntegrityError as exc:
                    if exc.args[:1] == (DUPLICATE_KEY,):
                        log.info("event {} was stored by its commit", call.event.id)
                    else:
                        log.exception("event {} could not be settled", call.event.id)
                except TRANSIENT_ERRORS:
                    left.append(call)
                except Exception:
                    log.exception("event {} could not be settled", call.event.id)
                else:
                    log.warning("event {} settled: {}", call.event.id, outcome)
                    if self.background is not None and outcome == "stored":
                        self.background.send([job_message(event_dict(call.event))])
            pending = left
            if pending:
                if loop.time() > give_up:
                    log.error(
                        "gave up on {} events answered 202: {}",
                        len(pending),
                        [c.event.id for c in pending],
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _fire(
        self, call: Call, deadline: float | None = None, request: Request | None = None
    ) -> Intake:
        """Store the event (and its key) by `deadline` (loop time), answer, publish after.
        `request`: the API call, whose `traceparent` the event's trace links to."""
        event = call.event
        size = job_bytes(event.payload, event.request)
        if size > MAX_JOB_BYTES:
            raise Problem(
                413, f"This payload makes a {size}-byte job; at most {MAX_JOB_BYTES} fit."
            )
        try:
            outcome = await self.writes.submit(call, size, deadline)
        except Refused as exc:
            raise _refused(exc) from None
        if outcome != "stored":
            return outcome
        if self.background is not None:
            self.background.send([job_message(event_dict(event))])
        if self.res.tracing is not None:
            caller = None if request is None else request.headers.get("traceparent")
            self.res.tracing.event(event, self.res.clock.now(), caller=caller)
        logger.bind(
            action="fired",
            trigger_id=event.trigger_id,
            event_id=event.id,
            attempt=1,
            source=event.source,
        ).info("fired")
        return outcome

    def _event(
        self,
        *,
        record_id: str | None,
        kind: str,
        source: str,
        payload: Any,
        request: dict[str, Any],
        test: bool,
    ) -> NewEvent:
        now = self.res.clock.now()
        return NewEvent(
            id=new_id(now),
            trigger_id=record_id,
            trigger_type=kind,
            source=source,
            scheduled_at=now,
            fired_at=now,
            payload=payload,
            request=request,
            next_attempt_at=now + self.res.settings.recovery_after,
            is_test_run=test,
            note=TEST_RUN_NOTE if test else None,
        )

    async def webhook(self, request: Request) -> Response:
        # The path holds the URL's secret token, not the trigger id; it is never logged
        # nor echoed (the middleware masks it in the access log).
        token = request.path_params["token"]
        self._limit_address(request)
        try:
            # Refused before anything is read (body, trigger, key): under a backlog or
            # while the database is silent, a refusal costs neither time nor memory.
            self.writes.admit()
        except Refused as exc:
            raise _refused(exc) from None
        deadline = self.writes.deadline()  # for this call's reads and its store
        parsed: list[Any] = []  # the body (or why it is refused), read once for both tries
        held: list[Rate] = []  # the trigger limit this call holds a token under, if any

        async def payload() -> Any:
            if not parsed:
                try:
                    parsed.append(await read_json(request, self.res.settings.max_body_bytes))
                except Problem as exc:
                    parsed.append(exc)
            if isinstance(parsed[0], Problem):
                raise parsed[0]
            return parsed[0]

        cached = self.tokens.get(token)
        if cached is not None:
            try:
                answer = await self._accept(request, cached, payload, deadline, held, cached=True)
            except Unavailable:
                raise
            except Problem:
                # The call itself is refused (body, header, size): answered after a fresh
                # read, whose 404/409 for a trigger deleted or paused since come first.
                answer = None
            else:
                if answer is None:
                    self.tokens.drop(token)  # the trigger changed since it was cached
            if answer is not None:
                return answer
        record = None
        if _TOKEN.fullmatch(token):
            record = await _read_by(deadline, self.store.get_by_token(token))
        if record is not None and record.type == "webhook" and record.status == "active":
            self.tokens.put(token, record)
        answer = await self._accept(request, record, payload, deadline, held, cached=False)
        assert answer is not None  # only a cached record's answer can be deferred
        return answer

    async def _accept(
        self,
        request: Request,
        record: TriggerRecord | None,
        payload: Callable[[], Awaitable[Any]],
        deadline: float,
        held: list[Rate],
        *,
        cached: bool,
    ) -> Response | None:
        """Answer a webhook call checked by `record`; None when `record` came from the
        cache and may be out of date (the trigger changed, or the payload fails its
        schema, which an edit may have changed): the caller reads it afresh."""
        if record is None or record.type != "webhook":
            raise Problem(404, "No webhook trigger at this URL.")
        if record.status != "active":
            raise Problem(409, f"The trigger is {record.status}; it accepts no calls.")
        self._limit_trigger(record, held, cached=cached)
        key = request.headers.get("idempotency-key")
        if key is not None and (not 1 <= len(key) <= 255 or not set(key) <= _IDEMPOTENCY_KEY_CHARS):
            raise Problem(
                400,
                "Invalid header.",
                [FieldError("Idempotency-Key", "use 1-255 visible ASCII characters")],
            )
        body = await payload()
        errors = payload_errors(self.validators.get(record), body, "$")
        if errors:
            if cached:
                return None
            raise Problem(400, "The payload does not match the trigger's schema.", errors)
        event = self._event(
            record_id=record.id,
            kind="webhook",
            source="api",
            payload=body,
            request=request_snapshot(record.config, record.signing, self.res.clock.now()),
            test=False,
        )
        expect = fingerprint(record) if cached else None
        if key is None:
            if await self._fire(Call(event, None, expect), deadline, request=request) == "stale":
                return None
            return json_response({"event_id": event.id}, 202)
        # Canonical JSON, so a repeat that differs only in spacing or key order matches.
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        idem = Key(record.id, key, digest)
        earlier = await self._earlier(idem, deadline)
        if earlier is not None:
            return earlier
        outcome = await self._fire(Call(event, idem, expect), deadline, request=request)
        if outcome == "stale":
            return None
        if outcome == "taken":  # a concurrent call with the same key was stored first
            earlier = await self._earlier(idem, deadline)
            if earlier is None:
                raise RuntimeError("an Idempotency-Key was taken, then not found")
            return earlier
        return json_response({"event_id": event.id}, 202)

    def _limit_address(self, request: Request) -> None:
        """EVENTTRIGGER_INGEST_IP_RATE: calls a second from one client address (the
        connection's peer, or what a trusted proxy says in X-Forwarded-For)."""
        if self.address_limits is None:
            return
        address = caller_address(request, self.res.settings)
        wait = self.address_limits.take(address, self.res.clock.now())
        if wait is not None:
            self.res.metrics.ingest_rate_limited.labels("address").inc()
            raise RateLimited("Too many webhook calls from this address; try again later.", wait)

    def _limit_trigger(self, record: TriggerRecord, held: list[Rate], *, cached: bool) -> None:
        """The trigger's own `config.ingest_rate_limit`: one token per call, or a 429.

        A call may be judged twice: by the cached record, then by a fresh read when that
        refused it (a 429 included: the limit may have been raised since) or found the
        trigger changed. A refusal takes nothing, and a token taken under the limit the
        fresh read shows too is not taken again; a changed limit starts a new bucket
        (full) and judges the call by it. So a changed limit governs the very next call,
        and no call is counted twice.
        """
        rate = ingest_rate(record.config)
        if held and held[0] == rate:
            return
        held.clear()
        if rate is None:
            self.trigger_limits.forget(record.id)
            return
        wait = self.trigger_limits.take(record.id, self.res.clock.now(), rate)
        if wait is not None:
            if not cached:  # a cached record's refusal is checked by a fresh read first
                self.res.metrics.ingest_rate_limited.labels("trigger").inc()
            raise RateLimited("This trigger's ingest rate limit is reached; try again later.", wait)
        held.append(rate)

    async def _earlier(self, key: Key, deadline: float) -> Response | None:
        """The answer for a repeated Idempotency-Key within the retention window, if any."""
        horizon = self.res.clock.now() - self.res.settings.retention_total
        row = await _read_by(deadline, intake.earlier(self.res.db, key, horizon))
        if row is None:
            return None
        if row["request_hash"] != key.digest:
            raise Problem(422, "This Idempotency-Key was used with a different body.")
        return json_response({"event_id": row["event_id"]}, 200)

    async def test_trigger(self, request: Request) -> Response:
        trigger_id = request.path_params["trigger_id"]
        record = await self.store.get(trigger_id) if looks_like_id(trigger_id) else None
        if record is None:
            raise Problem(404, f"No trigger with id {trigger_id!r}.")
        body = await read_json(request, self.res.settings.max_body_bytes, optional=True)
        errors = TEST.errors(body)
        if errors:
            raise Problem(400, "The request has invalid fields.", errors)
        if record.type == "webhook":
            if "payload" not in body:
                raise Problem(
                    400,
                    "A webhook trigger's test needs a payload.",
                    [FieldError("payload", "is required for a webhook trigger")],
                )
            errors = payload_errors(self.validators.get(record), body["payload"], "payload")
            if errors:
                raise Problem(400, "The payload does not match the trigger's schema.", errors)
        if "payload" in body and (deep := depth_errors(body["payload"], "payload")):
            raise Problem(400, "The request has invalid fields.", deep)
        payload = body["payload"] if "payload" in body else record.config.get("payload")
        event = self._event(
            record_id=record.id,
            kind=record.type,
            source="manual-test",
            payload=payload,
            request=request_snapshot(record.config, record.signing, self.res.clock.now()),
            test=True,
        )
        await self._fire(Call(event), request=request)
        return json_response({"event_id": event.id}, 202)

    async def test_run(self, request: Request) -> Response:
        body = await read_json(request, self.res.settings.max_body_bytes)
        errors = TEST_RUN_BODY.errors(body)
        if errors:
            raise Problem(400, "The request has invalid fields.", errors)
        now = self.res.clock.now()
        try:
            config = normalise_config(body["type"], body["config"], now, limits(self.res))
        except InvalidInput as exc:
            raise Problem(400, exc.detail, exc.errors) from None
        if body["type"] == "webhook":
            if "payload" not in body:
                raise Problem(
                    400,
                    "A webhook test run needs a payload.",
                    [FieldError("payload", "is required for a webhook trigger")],
                )
            validator = jsonschema_rs.validator_for(config["schema"], offline=True)
            errors = payload_errors(validator, body["payload"], "payload")
            if errors:
                raise Problem(400, "The payload does not match the schema.", errors)
        if "payload" in body and (deep := depth_errors(body["payload"], "payload")):
            raise Problem(400, "The request has invalid fields.", deep)
        payload = body["payload"] if "payload" in body else config.get("payload")
        secret = new_signing_secret()
        event = self._event(
            record_id=None,
            kind=body["type"],
            source="manual-test",
            payload=payload,
            request=request_snapshot(config, secret, now),
            test=True,
        )
        await self._fire(Call(event), request=request)
        return json_response({"event_id": event.id, "signing_secret": secret}, 202)
