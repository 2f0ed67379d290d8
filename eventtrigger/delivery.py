"""HTTP delivery: one aiohttp session per process, the SSRF guard, signing, outcomes.

The SSRF guard sits in the resolver, so it judges the addresses the connection will
actually use (after DNS), not the name in the URL; IP-literal hosts, which aiohttp does
not resolve, are judged before the request. A host the operator allowed by name
(EVENTTRIGGER_EGRESS_ALLOW_HOSTS) keeps every address it resolves to. Redirects are
never followed, so an allowed name cannot hand the connection on to another host.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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
        host = urlsplit(request["url"]).hostname or ""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None and (why := refusal(literal, self._egress)) is not None:
            return Result(None, f"refused: {why}", None, permanent=True)
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
        timeout = parse_duration(job["timeout"]).total_seconds()
        try:
            async with self._session.request(
                request["method"],
                request["url"],
                data=sent,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                text = (await _head(response.content, BODY_KEPT)).decode(errors="replace")
                ok = 200 <= response.status < 300
                error = None if ok else f"HTTP {response.status}: {text[:MAX_ERROR]}"
                return Result(
                    response.status, error, response.headers.get("Retry-After"), body=text
                )
        except TimeoutError:
            return Result(None, f"timed out after {job['timeout']}", None)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EgressRefused):
                return Result(None, f"refused: {exc.os_error}", None, permanent=True)
            return Result(None, _short(exc), None)
        except (aiohttp.ClientError, OSError) as exc:
            return Result(None, _short(exc), None)
        except (UnicodeError, ValueError) as exc:
            # The URL cannot be requested at all (e.g. a host IDNA refuses): retrying won't help.
            return Result(None, _short(exc), None, permanent=True)


async def _head(stream: aiohttp.StreamReader, size: int) -> bytes:
    """Up to `size` bytes of a response body: `read(n)` may return less than is coming."""
    data = b""
    while len(data) < size and (chunk := await stream.read(size - len(data))):
        data += chunk
    return data


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
