"""Swagger UI at `/docs`, from assets we serve ourselves (vendored from npm's
swagger-ui-dist by scripts/vendor-assets.sh), so the page works offline and behind
firewalls: no CDN, and no inline script (the start-up code is a file of ours too).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "swagger-ui"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>eventtrigger API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/start.js"></script>
</body>
</html>
"""

# Swagger UI's own bundle builds its styles at run time, so style-src needs 'unsafe-inline';
# scripts come from us only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


async def _page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})


def routes() -> list[BaseRoute]:
    """`/docs` (documented in the OpenAPI) and its assets (a mount, not an API route)."""
    return [
        Route("/docs", _page, methods=["GET"]),
        Mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets"),
    ]
