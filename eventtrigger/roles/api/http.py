"""Request and response helpers: bounded JSON bodies, orjson responses, paging params."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.config import Settings
from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.ratelimit import address_key, client_address
from eventtrigger.ids import looks_like_id
from eventtrigger.roles.api.problems import Problem

_MISSING = object()


def caller_address(request: Request, settings: Settings) -> str:
    """The client a per-address limit counts: the connection's peer, or what a trusted
    proxy (EVENTTRIGGER_TRUSTED_PROXIES) names in X-Forwarded-For."""
    trusted = settings.trusted_proxies
    peer = request.client.host if request.client is not None else None
    forwarded = request.headers.getlist("x-forwarded-for") if trusted else []
    return address_key(client_address(peer, forwarded, trusted))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The body is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, optional: bool = False) -> Any:
    """Parse a JSON body: 413 too large, 415 not declared JSON, 400 not parseable.

    With `optional`, an empty body reads as {} whatever its Content-Type: an empty body
    is an absent one, and some clients (aiohttp) label every bodiless POST
    application/octet-stream.
    """
    raw = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    if optional and not raw.strip():
        return {}
    if not _is_json(content_type):
        raise Problem(415, "Send the body as JSON with Content-Type: application/json.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}") from None


def query_limit(request: Request, default: int = 50, maximum: int = 500) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise Problem(
            400,
            "Invalid query parameter.",
            [FieldError("limit", f"must be a whole number from 1 to {maximum}")],
        )
    return int(raw)


def encode_cursor(at: datetime, item_id: str) -> str:
    """An opaque keyset position: the last item's sort time and id."""
    text = f"{at.astimezone(UTC).isoformat()}|{item_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(request: Request) -> tuple[datetime, str] | None:
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        at, _, item_id = text.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not looks_like_id(item_id):
            raise ValueError(text)
        when = when.astimezone(UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise Problem(
            400,
            "Invalid query parameter.",
            [FieldError("cursor", "not a cursor returned by this API")],
        ) from None
    return when, item_id


def encode_id_cursor(item_id: str) -> str:
    """An opaque position in a list ordered by id alone (the per-trigger aggregate)."""
    return base64.urlsafe_b64encode(f"id|{item_id}".encode()).decode().rstrip("=")


def decode_id_cursor(request: Request) -> str | None:
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, item_id = text.partition("|")
    if kind != "id" or not looks_like_id(item_id):
        raise Problem(
            400,
            "Invalid query parameter.",
            [FieldError("cursor", "not a cursor returned by this API")],
        )
    return item_id


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise Problem(
            400,
            "Invalid query parameter.",
            [FieldError(name, f"must be one of {', '.join(choices)}")],
        )
    return value
