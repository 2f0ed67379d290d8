"""RFC 9457 problem+json: every error the API returns has this shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response

from eventtrigger.domain.errors import FieldError


class Problem(Exception):
    """Raise anywhere in a handler; the app turns it into a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


def problem_response(problem: Problem) -> Response:
    title = HTTPStatus(problem.status).phrase
    body: dict[str, Any] = {
        "type": f"https://eventtrigger.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message} for e in problem.errors]
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type="application/problem+json",
        headers=problem.headers,
    )
