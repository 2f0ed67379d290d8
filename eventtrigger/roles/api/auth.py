"""API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from eventtrigger.config import Settings
from eventtrigger.roles.api.problems import Problem


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def require_key(request: Request, settings: Settings) -> None:
    """Raise 401 unless the request carries one of the configured keys."""
    if not settings.auth_enabled:
        return
    key = presented_key(request)
    if key is not None:
        given = key.encode()
        # Compare against every key, so timing does not tell which (or how many) matched.
        matched = False
        for expected in settings.api_keys:
            matched |= hmac.compare_digest(given, str(expected).encode())
        if matched:
            return
    raise Problem(
        401,
        "A valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>.",
        headers={"WWW-Authenticate": 'Bearer realm="eventtrigger"'},
    )
