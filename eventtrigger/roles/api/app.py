"""The HTTP application every process serves: operations endpoints always, the API
routes when the process runs the api role.

`stop` is the process's stop event: long-lived answers (the live tail) end when it is
set, so the HTTP server's graceful shutdown never waits on them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from eventtrigger.resources import Resources
from eventtrigger.roles.api import docs
from eventtrigger.roles.api.audit import AuditRoutes
from eventtrigger.roles.api.auth import Guard
from eventtrigger.roles.api.dashboard import routes as console_routes
from eventtrigger.roles.api.events import EventRoutes
from eventtrigger.roles.api.firing import FiringRoutes
from eventtrigger.roles.api.http import json_response
from eventtrigger.roles.api.keys import KeyRoutes
from eventtrigger.roles.api.middleware import WEBHOOK_ROUTE, RequestContext, loggable_path
from eventtrigger.roles.api.openapi import openapi_document
from eventtrigger.roles.api.problems import Problem, problem_response
from eventtrigger.roles.api.replay import ReplayRoutes
from eventtrigger.roles.api.stats import stats
from eventtrigger.roles.api.stream import StreamRoute
from eventtrigger.roles.api.triggers import TriggerRoutes
from eventtrigger.store.db import TRANSIENT_ERRORS

Endpoint = Callable[[Request], Awaitable[Response]]


def by_method(path: str, **handlers: Endpoint) -> Route:
    """One route per path, so a 405 lists every method the path allows."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, dispatch, methods=list(handlers))


class Contained:
    """Keeps an error that has been answered and logged inside the app.

    Starlette answers an unhandled exception with our 500/503 handler and then raises it
    again for the server to log: uvicorn would print a second, bare "Exception in ASGI
    application" and close the connection under the client. An error answered by
    `on_error` stops here; one raised after the answer began (no handler could run) is
    logged once, here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if not scope.get("state", {}).get("error_answered"):
                logger.bind(action="internal_error").exception(
                    "error after the response began on {}", loggable_path(scope.get("path", ""))
                )


ErrorAnswer = Callable[[Request, Exception], Awaitable[Response]]


class WebhookFirst:
    """`POST /api/v1/webhook/{token}` straight to its handler, ahead of the router.

    Webhook calls are the one route called thousands of times a second; Starlette's
    middleware, exception wrappers and a walk over every route were about a sixth of the
    API's time per call (py-spy, S4). The route's own match decides (so the path and
    method rules are the router's) and errors get the app's answers; anything else goes
    on to the app.
    """

    def __init__(self, app: ASGIApp, route: Route, on_error: ErrorAnswer) -> None:
        self.app = app
        self.route = route
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match, child = self.route.matches(scope)
        if match is not Match.FULL:  # another path, or another method (the app's 405)
            await self.app(scope, receive, send)
            return
        scope.update(child)
        request = Request(scope, receive, send)
        try:
            response = await self.route.endpoint(request)
        except Exception as exc:
            response = await self.on_error(request, exc)
        await response(scope, receive, send)


def routes(res: Resources, *, api: bool, stop: asyncio.Event | None = None) -> list[BaseRoute]:
    """Every route the process serves; the OpenAPI document must list each of them."""

    async def live(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def health(request: Request) -> Response:
        healthy, body = await res.health.report()
        return json_response(body, 200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(res.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    served: list[BaseRoute] = [
        Route("/health/live", live),
        Route("/health", health),
        Route("/metrics", metrics),
    ]
    if api:
        document = openapi_document(res.settings.public_url)

        async def openapi(request: Request) -> Response:
            return json_response(document)

        async def stats_route(request: Request) -> Response:
            return await stats(request, res)

        t = TriggerRoutes(res)
        f = FiringRoutes(res)
        e = EventRoutes(res)
        r = ReplayRoutes(res)
        tail = StreamRoute(res, stop or asyncio.Event())
        audit = AuditRoutes(res)
        guard = Guard(res)
        k = KeyRoutes(res, guard)
        api_routes: list[BaseRoute] = [
            Route("/openapi.json", openapi),
            *docs.routes(),
            by_method("/api/v1/triggers", GET=t.list, POST=t.create),
            by_method("/api/v1/triggers/{trigger_id}", GET=t.get, PATCH=t.patch, DELETE=t.delete),
            Route("/api/v1/triggers/{trigger_id}/test", f.test_trigger, methods=["POST"]),
            Route(
                "/api/v1/triggers/{trigger_id}/rotate-webhook-url",
                t.rotate_webhook_url,
                methods=["POST"],
            ),
            Route("/api/v1/triggers/{trigger_id}/rotate-secret", t.rotate_secret, methods=["POST"]),
            Route("/api/v1/test-runs", f.test_run, methods=["POST"]),
            Route(WEBHOOK_ROUTE, f.webhook, methods=["POST"]),
            Route("/api/v1/events", e.list, methods=["GET"]),
            Route("/api/v1/events/replay", r.bulk, methods=["POST"]),
            Route("/api/v1/events/stream", tail.get, methods=["GET"]),
            Route("/api/v1/stats", stats_route, methods=["GET"]),
            Route("/api/v1/audit", audit.list, methods=["GET"]),
            *console_routes(res),
            Route("/api/v1/events/{event_id}", e.get, methods=["GET"]),
            Route("/api/v1/events/{event_id}/attempts", e.attempts, methods=["GET"]),
            Route("/api/v1/events/{event_id}/replay", r.one, methods=["POST"]),
            by_method("/api/v1/keys", GET=k.list, POST=k.create),
            Route("/api/v1/keys/self", k.self_, methods=["GET"]),
            Route("/api/v1/keys/{key_id}", k.delete, methods=["DELETE"]),
        ]
        # Every /api/v1 route but the webhook goes behind the key check (auth.py's
        # ROUTE_SCOPES); the rest (docs, console page and assets) stays open.
        served += [guard.guard(route) for route in api_routes]
    return served


def build_app(res: Resources, *, api: bool, stop: asyncio.Event | None = None) -> RequestContext:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if exc.status_code != 404 else f"No route {request.url.path}."
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(Problem(exc.status_code, detail, headers=headers))

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # The client hung up mid-body: nobody reads this answer, and it is no error of ours.
        logger.bind(action="client_disconnected").info("client left before sending its body")
        return Response(status_code=400)

    async def on_error(request: Request, exc: Exception) -> Response:
        request.state.error_answered = True  # Contained need not log it again
        if isinstance(exc, (*TRANSIENT_ERRORS, TimeoutError)):
            logger.bind(action="dependency_error").warning("database unavailable: {}", exc)
            return problem_response(
                Problem(
                    503, "The database is unavailable; try again.", headers={"Retry-After": "1"}
                )
            )
        logger.bind(action="internal_error").exception(
            # The raw ASGI path: request.url is rebuilt from the Host header, which a caller
            # can shape so the mask would not see a webhook path.
            "unhandled error on {}",
            loggable_path(request.scope["path"]),
        )
        return problem_response(Problem(500, "Internal error; it has been logged."))

    # Most specific first: `answer` takes the first that matches, as Starlette does.
    handlers: dict[type[Exception], ErrorAnswer] = {
        Problem: on_problem,
        HTTPException: on_http,
        ClientDisconnect: on_disconnect,
        Exception: on_error,
    }

    async def answer(request: Request, exc: Exception) -> Response:
        handler = next(h for kind, h in handlers.items() if isinstance(exc, kind))
        return await handler(request, exc)

    served = routes(res, api=api, stop=stop)
    app: ASGIApp = Starlette(routes=served, exception_handlers=handlers)
    if api:
        webhook = next(r for r in served if isinstance(r, Route) and r.path == WEBHOOK_ROUTE)
        app = WebhookFirst(app, webhook, answer)
    return RequestContext(Contained(app), res.metrics)
