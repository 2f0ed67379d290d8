"""`GET /api/v1/audit`: the audit trail, newest first; and what every management handler
uses to sign its change's audit row (the key that made it, the request it came in).

The listing needs the `admin` scope (auth.py's ROUTE_SCOPES): who changed what is itself
worth protecting, and the trail names every key. Its rows hold field names, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain.audit import AuditEntry, audit_entry, page_json, parse_query
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import json_response
from eventtrigger.roles.api.principal import principal_of
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import audit

# The request-id middleware's rule for a caller's X-Request-Id (see middleware.py).
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_of(request: Request) -> str | None:
    """The id the request-id middleware gave this request (echoed as `X-Request-Id`).

    The middleware leaves it on `request.state.request_id`; where it does not (an app
    built without it), the caller's own `X-Request-Id` when the middleware would have
    kept it, else None."""
    given = getattr(request.state, "request_id", None)
    if isinstance(given, str):
        return given
    header = request.headers.get("x-request-id", "")
    return header if _SANE_ID.fullmatch(header) else None


def entry_for(
    request: Request, action: str, target_id: str | None, fields: Iterable[str], at: datetime
) -> AuditEntry:
    """The audit row of `action` on `target_id`, made by this request's key at `at`."""
    return audit_entry(
        principal_of(request), action, target_id, request_id_of(request), fields, at=at
    )


class AuditRoutes:
    def __init__(self, res: Resources) -> None:
        self.res = res

    async def list(self, request: Request) -> Response:
        try:
            query = parse_query(request.query_params)
        except InvalidInput as exc:
            raise Problem(400, exc.detail, exc.errors) from None
        rows = await audit.page(self.res.db, query)
        return json_response(page_json(rows, query.limit))
