"""A small synchronous client for the management API (standard library `urllib` only).

A command line makes one or a few requests and exits, so blocking I/O is the simplest fit;
`aiohttp` would add an event loop for nothing and `httpx` is not a runtime dependency.
Every failure becomes one of two exceptions: `ApiError` when the server answered with an
error status (its problem+json parsed when there is one), `Unreachable` when there was no
usable answer at all. The command layer maps those to exit codes. `stream` reads a
server-sent-events answer line by line (for `events tail`), the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventtrigger_client import __version__

API_BASE = "/api/v1"
# Seconds a stream read may wait: well above the server's keep-alive interval, whatever
# the per-request --timeout is (a short one suits requests, not a quiet stream).
STREAM_READ_TIMEOUT = 60.0


@dataclass
class ApiError(Exception):
    """The server answered `status` >= 400; `problem` is its problem+json body, if any."""

    status: int
    method: str
    path: str
    problem: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the raw body when it was not problem+json (e.g. a proxy's HTML page)
    hint: str = ""  # what the client knows that the server did not say
    retry_after: float | None = None  # seconds, from a 429's or 503's Retry-After header

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.status} {self.detail}"

    @property
    def detail(self) -> str:
        detail = self.problem.get("detail") or self.problem.get("title")
        if isinstance(detail, str) and detail:
            return detail
        return self.text.strip()[:300] or "(no detail)"

    @property
    def field_errors(self) -> list[tuple[str, str]]:
        """`(field, message)` for each entry of the problem's `errors`, in order."""
        errors = self.problem.get("errors")
        if not isinstance(errors, list):
            return []
        return [
            (str(e.get("field", "")), str(e.get("message", "")))
            for e in errors
            if isinstance(e, dict)
        ]


class Unreachable(Exception):
    """No answer we could use: connection refused, DNS, timeout, TLS, or a non-JSON 2xx."""


class ApiClient:
    """Requests against one API base URL with one key (or none: the server then says 401)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        # Accept the URL with or without the API prefix: people paste either.
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix(API_BASE)
        self.api_key = api_key
        self.timeout = timeout

    def _url(self, path: str, query: Mapping[str, str | int | None] | None) -> str:
        url = self.base_url + API_BASE + path
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return url

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"eventtrigger-cli/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        send_body: bool = False,
    ) -> Any:
        """`method` `API_BASE + path`; the decoded JSON answer (None for an empty one).

        `send_body` says whether `body` goes out as JSON even when it is None (so a caller
        can send a literal `null`); without it a None body sends no body at all.
        """
        url = self._url(path, query)
        headers = self._headers("application/json")
        data = None
        if body is not None or send_body:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, method, API_BASE + path) from None
        except (OSError, ValueError) as exc:
            # URLError, refused connections, timeouts and TLS failures are OSErrors; an
            # unusable URL (no scheme) is a ValueError from urllib.
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{self.base_url}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise Unreachable(
                f"{url}: the answer is not JSON (is {self.base_url} an eventtrigger API?)"
            ) from None

    def stream(
        self,
        path: str,
        query: Mapping[str, str | int | None] | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[str]:
        """The lines (without their line ends) of a `text/event-stream` answer at `path`,
        as they arrive, until the server closes the stream.

        Each read waits at most `STREAM_READ_TIMEOUT` seconds (or `timeout`, if longer): the
        server's keep-alive comments come more often, so a longer silence is a dead
        connection (`Unreachable`).
        """
        headers = self._headers("text/event-stream")
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        req = urllib.request.Request(self._url(path, query), headers=headers, method="GET")
        try:
            answer = urllib.request.urlopen(req, timeout=max(self.timeout, STREAM_READ_TIMEOUT))
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, "GET", API_BASE + path) from None
        except (OSError, ValueError) as exc:
            raise Unreachable(f"{self.base_url}: {getattr(exc, 'reason', exc)}") from None
        with answer:
            kind = answer.headers.get_content_type()
            if kind != "text/event-stream":
                raise Unreachable(f"{API_BASE + path}: expected an event stream, got {kind}")
            while True:
                try:
                    raw = answer.readline()
                except OSError as exc:  # a timeout or a reset mid-stream
                    raise Unreachable(f"{self.base_url}: the stream broke: {exc}") from None
                if not raw:
                    return
                yield raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def pages(
        self,
        path: str,
        query: Mapping[str, str | int | None],
        follow: bool,
        cursor_param: str = "cursor",
    ) -> Iterator[dict[str, Any]]:
        """The list page at `path`, then (when `follow`) each page its `next_cursor` names
        (sent back as `cursor_param`: the audit trail takes it as `before`)."""
        params = dict(query)
        while True:
            page = self.request("GET", path, query=params)
            if not isinstance(page, dict):
                raise Unreachable(f"{path}: expected a JSON object, got {type(page).__name__}")
            yield page
            cursor = page.get("next_cursor")
            if not follow or not cursor:
                return
            params[cursor_param] = cursor


def _api_error(exc: urllib.error.HTTPError, method: str, path: str) -> ApiError:
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    text = raw.decode(errors="replace")
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        problem = parsed
    retry_after = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
    return ApiError(exc.code, method, path, problem, "" if problem else text, "", retry_after)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay-seconds as a number; None for an absent or unusable
    one (an HTTP date is not worth a clock comparison here: the caller's backoff serves)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
