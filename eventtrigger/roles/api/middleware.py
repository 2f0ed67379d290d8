"""Request ids and access logs: a pure ASGI middleware around the whole app.

The id comes from `X-Request-Id` when the caller sends a sane one, else it is generated;
it is echoed in the response and bound to every log line written while the request is
handled. Headers are never logged (they carry API keys).
"""

from __future__ import annotations

import re
import secrets
import time

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventtrigger.observability.metrics import Metrics

_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Everything after the webhook prefix is (or may be) a URL's secret token; a malformed
# path with more segments or slashes must not slip a token past the mask either.
WEBHOOK_ROUTE = "/api/v1/webhook/{token}"  # the route, and its path as logged
_WEBHOOK = re.compile(r"^/+api/+v1/+webhook(?:/.*)?$", re.IGNORECASE | re.DOTALL)


def loggable_path(path: str) -> str:
    """`path` as it may appear in a log line: a webhook URL's token masked."""
    return _WEBHOOK.sub(WEBHOOK_ROUTE, path)


_QUIET = ("/health", "/metrics")  # probes and scrapes: logged at DEBUG only


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.fullmatch(given) else secrets.token_hex(8)
        # Handlers read it from request.state (the audit trail records it).
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with logger.contextualize(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # A webhook URL's token is its secret: never write it to the logs.
                path = loggable_path(scope["path"])
                self.metrics.http_requests.labels(scope["method"], str(status)).inc()
                level = "DEBUG" if path.startswith(_QUIET) else "INFO"
                if status == 202 and scope["method"] == "POST" and path == WEBHOOK_ROUTE:
                    # An accepted webhook call has its `fired` line (same request_id, with
                    # the trigger and event ids); a second line per call was a tenth of
                    # the API's work at thousands of calls a second.
                    level = "DEBUG"
                logger.bind(
                    role="http",  # the process's HTTP server, whatever roles it runs
                    action="http_request",
                    method=scope["method"],
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                ).log(level, "{} {} {}", scope["method"], path, status)
