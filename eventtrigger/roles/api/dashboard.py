"""`GET /dashboard`: the operator console, a small client of the JSON API.

The page itself needs no key: it asks for one, keeps it in the tab's sessionStorage (gone
when the tab closes) and sends it on every `/api/v1/...` call. The app is plain ES modules
and CSS under `static/console/` with uPlot vendored from npm (scripts/vendor-assets.sh):
no build step, no CDN. Console pages carry a strict Content-Security-Policy: every
script and stylesheet is a file we serve, and there is no inline script to allow.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from eventtrigger.resources import Resources
from eventtrigger.roles.api.series import SeriesRoute

ASSETS = Path(__file__).parent / "static" / "console"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is a shell whose assets change with releases: always ask again.
    "Cache-Control": "no-cache",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>eventtrigger console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/assets/vendor/uplot/uPlot.min.css">
<link rel="stylesheet" href="/dashboard/assets/console.css">
<script type="module" src="/dashboard/assets/app.js"></script>
</head>
<body>
<header class="top">
  <a class="brand" href="#/overview">eventtrigger</a>
  <nav id="nav">
    <a href="#/overview" data-nav="overview">Overview</a>
    <a href="#/triggers" data-nav="triggers">Triggers</a>
    <a href="#/events" data-nav="events">Events</a>
    <a href="#/aggregate" data-nav="aggregate">Per trigger (48 h)</a>
  </nav>
  <span id="status">not connected</span>
  <form id="keyform" autocomplete="off">
    <input id="key" type="password" placeholder="API key" aria-label="API key">
    <button type="submit">Use key</button>
    <button type="button" id="forget" hidden>Forget key</button>
  </form>
</header>
<div id="toast" role="status" aria-live="polite" hidden></div>
<main id="view"><p class="muted">Loading the console...</p></main>
<dialog id="confirm">
  <form method="dialog">
    <p id="confirm-text"></p>
    <menu>
      <button value="cancel" id="confirm-cancel">Cancel</button>
      <button value="ok" id="confirm-ok" class="danger">Delete</button>
    </menu>
  </form>
</dialog>
<noscript>The console needs JavaScript; the JSON API works without it (see /docs).</noscript>
</body>
</html>
"""


class _Assets:
    """The console's static files, with the same security headers as the page."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=ASSETS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))  # type: ignore[call-overload]
                raw.append((b"x-content-type-options", b"nosniff"))
                # Revalidate every time (a 304 by ETag is cheap): ES modules import each
                # other, and a browser mixing cached old modules with new ones breaks.
                raw.append((b"cache-control", b"no-cache"))
                message["headers"] = raw
            await send(message)

        await self.files(scope, receive, with_headers)  # type: ignore[arg-type]


async def _page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


def routes(res: Resources) -> list[BaseRoute]:
    """`/dashboard`, its assets (a mount, not an API route) and the chart series."""
    series = SeriesRoute(res)
    return [
        Route("/dashboard", _page, methods=["GET"]),
        Route("/api/v1/stats/series", series.get, methods=["GET"]),
        Mount("/dashboard/assets", _Assets(), name="console-assets"),
    ]
