"""HTTP delivery: one aiohttp session per process, the SSRF guard, signing, outcomes.

The SSRF guard sits in the resolver, so it judges the addresses the connection will
actually use (after DNS), not the name in the URL; IP-literal hosts, which aiohttp does
not resolve, are judged before the request. A host the operator allowed by name
(EVENTTRIGGER_EGRESS_ALLOW_HOSTS) keeps every address it resolves to. Redirects are
never followed, so an allowed name cannot hand the connection on to another host.

Each attempt's `Result` carries what was sent and what came back, for the attempt
history: the request's method, URL and headers (as the client sent them when there was
an answer, else as they were given to it) and the SHA-256 of its body, and a bounded set
of the response's headers. Values of headers whose names look secret are masked
(`sensitive`, `recorded_headers`), and so are the URL's query values and password
(`shown_url`): the history is read with `events:read`, which must not reveal what only
`triggers:read` may. A secret under a plain name (`X-Tenant: s3cr3t`) or inside a URL's
path cannot be told apart from data and stays visible. The body is not kept per attempt
(it is rebuilt from the event's payload, `request_body`, and the hash says whether it is
the same). The capture runs on the worker's hot path: a header name's verdict is cached,
and headers that fit their bounds are kept without ranking.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from eventtrigger import __version__
from eventtrigger.domain.durations import parse_duration
from eventtrigger.domain.egress import Egress, IPNetwork, name_refusal, refusal
from eventtrigger.domain.jobs import request_body
from eventtrigger.domain.signing import job_keys, signature_header

MAX_ERROR = 500  # characters of an error or response kept in the event log
BODY_KEPT = 1024  # bytes of a response kept in the attempt history (contract: 1 KiB)
HEADERS_KEPT = 32  # headers of a request or a response kept in the attempt history
HEADER_VALUE_KEPT = 512  # characters of each kept header value
HEADER_BYTES_KEPT = 16384  # characters of names and values kept per request or response
MASK = "***"
# A header's value is masked when its lower-cased name contains one of SENSITIVE_PARTS
# (`X-Auth`, `Api-Key`, `PASSWD`, `X-Hub-Signature`, `Set-Cookie`...), except the names
# below: our own signature (the console shows it; a receiver's timestamp tolerance and
# de-duplication on webhook-id make it useless for a replay) and CORS's response headers.
SENSITIVE_PARTS = (
    "auth",
    "credential",
    "session",
    "pass",
    "sig",
    "token",
    "secret",
    "key",
    "cookie",
    "private",
    "jwt",
    "bearer",
    "access",
)
VISIBLE_NAMES = frozenset({"webhook-signature"})
VISIBLE_PREFIXES = ("access-control-",)
SENSITIVE_CACHED = 4096  # header names whose verdict is remembered
# Kept first when a request has more headers than HEADERS_KEPT: what identifies it.
FIRST_KEPT = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")


class EgressRefused(OSError):
    """The endpoint resolves only to addresses deliveries may not reach."""


class GuardedResolver(ThreadedResolver):
    def __init__(self, egress: Egress) -> None:
        super().__init__()
        self._egress = egress

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        allowed = [r for r in results if self._why(host, r["host"]) is None]
        if not allowed:
            raise EgressRefused(self._why(host, results[0]["host"]) if results else host)
        return allowed

    def _why(self, name: str, address: str) -> str | None:
        return name_refusal(name, ipaddress.ip_address(address.split("%", 1)[0]), self._egress)


@dataclass(frozen=True)
class Result:
    status_code: int | None
    error: str | None
    retry_after: str | None
    permanent: bool = False  # refused by policy: retrying cannot help
    body: str | None = None  # the response's first BODY_KEPT bytes, as text; None if none
    # The request as sent: {"method", "url", "headers", "body_sha256"} (`sent_request`);
    # None when none was made (e.g. no signing secret).
    request: dict[str, Any] | None = None
    response_headers: dict[str, str] | None = None  # `recorded_headers`; None: no answer


def sensitive(name: str) -> bool:
    """Whether a header's value is masked in the attempt history (pure)."""
    return _sensitive(name.lower())


@functools.lru_cache(maxsize=SENSITIVE_CACHED)
def _sensitive(lowered: str) -> bool:
    # Cached: a worker sees the same few dozen names on every attempt. Bounded, as the
    # names a receiver answers with are its own choice.
    if lowered in VISIBLE_NAMES or lowered.startswith(VISIBLE_PREFIXES):
        return False
    return any(part in lowered for part in SENSITIVE_PARTS)


def recorded_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as the attempt history keeps them (pure): sensitive values masked, at most
    HEADERS_KEPT names (those of FIRST_KEPT first), each value cut at HEADER_VALUE_KEPT
    characters, HEADER_BYTES_KEPT characters in all. A repeated name keeps one entry, its
    values joined by ", " as HTTP allows. Names keep their case and their order."""
    merged: dict[str, tuple[str, str]] = {}  # lower-cased name -> (name, value)
    for raw_name, raw_value in headers:
        # Plain str: aiohttp's names are a str subclass, which JSON encoders refuse as keys.
        name, value = str(raw_name), str(raw_value)
        key = name.lower()
        shown = MASK if _sensitive(key) else value
        if key in merged:
            first, seen = merged[key]
            merged[key] = (first, seen if seen == MASK else f"{seen}, {shown}")
        else:
            merged[key] = (name, shown)
    cut = [(name, value[:HEADER_VALUE_KEPT]) for name, value in merged.values()]
    if len(cut) <= HEADERS_KEPT and sum(len(n) + len(v) for n, v in cut) <= HEADER_BYTES_KEPT:
        return dict(cut)  # the usual case: everything fits, nothing to rank
    order = {key: i for i, key in enumerate(merged)}
    ranked = sorted(
        merged, key=lambda k: FIRST_KEPT.index(k) if k in FIRST_KEPT else len(FIRST_KEPT)
    )
    kept: list[str] = []
    budget = HEADER_BYTES_KEPT
    for key in ranked[:HEADERS_KEPT]:
        name, value = merged[key]
        value = value[:HEADER_VALUE_KEPT]
        if len(name) + len(value) > budget:
            continue
        budget -= len(name) + len(value)
        kept.append(key)
    return {
        merged[k][0]: merged[k][1][:HEADER_VALUE_KEPT] for k in sorted(kept, key=order.__getitem__)
    }


def shown_url(url: str) -> str:
    """A URL as the attempt history and traces show it (pure): every query value masked
    (`?token=***&page=***`, a bare `?abc` as `?***`), the fragment too, and in the userinfo
    the password (`user:***@`) or a name alone (`***@`, often a token). Names and the path
    stay: a secret in the path looks like any other path."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        name, colon, _ = userinfo.partition(":")
        netloc = f"{name}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = (
        "&".join(_masked_field(field) for field in parts.query.split("&")) if parts.query else ""
    )
    fragment = MASK if parts.fragment else ""
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _masked_field(field: str) -> str:
    name, equals, value = field.partition("=")
    if not equals:
        return MASK if field else field
    return f"{name}={MASK}" if value else field


def sent_request(
    method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None
) -> dict[str, Any]:
    """What the attempt history keeps of a request (pure): its body only as a hash."""
    return {
        "method": method,
        "url": shown_url(url),
        "headers": recorded_headers(headers),
        "body_sha256": None if body is None else hashlib.sha256(body).hexdigest(),
    }


class Deliverer:
    def __init__(self, allowed: Egress | tuple[IPNetwork, ...]) -> None:
        self._egress = Egress.of(allowed)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._egress), limit=0, ttl_dns_cache=10
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, job: dict[str, Any], now: datetime) -> Result:
        assert self._session is not None
        request = job["request"]
        # POST/PUT/PATCH send the payload as JSON, a `null` payload too (`request_body`).
        sent = request_body(request)
        body = sent or b""
        timestamp = int(now.timestamp())
        # The user's own User-Agent / Content-Type win; names compare case-insensitively so
        # a request never carries two of either.
        headers = dict(request["headers"])
        given = {name.lower() for name in headers}
        if "user-agent" not in given:
            headers["User-Agent"] = f"eventtrigger/{__version__}"
        if sent is not None and "content-type" not in given:
            headers["Content-Type"] = "application/json"
        headers["webhook-id"] = job["event_id"]
        headers["webhook-timestamp"] = str(timestamp)
        # Two signatures during a secret rotation's grace, judged at this attempt's `now`.
        headers["webhook-signature"] = signature_header(
            job_keys(job), job["event_id"], timestamp, body, now
        )
        method, url = request["method"], request["url"]

        def given_request() -> dict[str, Any]:
            # Without an answer, the headers as given to the client (it adds Host and the
            # like). Built only then: an answered attempt records what the client sent.
            return sent_request(method, url, headers.items(), sent)

        host = urlsplit(url).hostname or ""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None and (why := refusal(literal, self._egress)) is not None:
            return Result(None, f"refused: {why}", None, permanent=True, request=given_request())
        timeout = parse_duration(job["timeout"]).total_seconds()
        try:
            async with self._session.request(
                method,
                url,
                data=sent,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                text = (await _head(response.content, BODY_KEPT)).decode(errors="replace")
                ok = 200 <= response.status < 300
                error = None if ok else f"HTTP {response.status}: {text[:MAX_ERROR]}"
                return Result(
                    response.status,
                    error,
                    response.headers.get("Retry-After"),
                    body=text,
                    # With an answer, every header the client sent (Host, Content-Length...).
                    request=sent_request(method, url, response.request_info.headers.items(), sent),
                    response_headers=recorded_headers(response.headers.items()),
                )
        except TimeoutError:
            return Result(None, f"timed out after {job['timeout']}", None, request=given_request())
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EgressRefused):
                return Result(
                    None,
                    f"refused: {exc.os_error}",
                    None,
                    permanent=True,
                    request=given_request(),
                )
            return Result(None, _short(exc), None, request=given_request())
        except (aiohttp.ClientError, OSError) as exc:
            return Result(None, _short(exc), None, request=given_request())
        except (UnicodeError, ValueError) as exc:
            # The URL cannot be requested at all (e.g. a host IDNA refuses): retrying won't help.
            return Result(None, _short(exc), None, permanent=True, request=given_request())


async def _head(stream: aiohttp.StreamReader, size: int) -> bytes:
    """Up to `size` bytes of a response body: `read(n)` may return less than is coming."""
    data = b""
    while len(data) < size and (chunk := await stream.read(size - len(data))):
        data += chunk
    return data


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
