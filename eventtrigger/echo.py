"""`eventtrigger echo`: a tiny HTTP receiver that logs every delivery it gets.

The compose stack runs it as the `echo` service so the walkthrough
(docs/getting-started.md) has an endpoint to deliver to; it is also handy for trying
triggers locally. It answers 200, or the status named by a `/status/NNN` path (e.g.
`/status/503` to watch retries).
One JSON line per request on stdout: method, path, the delivery's `webhook-id`,
whether a signature came along, and the body.
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def _receive(request: web.Request) -> web.Response:
    if request.path == "/health":  # the container's probe; not a delivery
        return web.json_response({"status": "ok"})
    body = await request.read()
    status = 200
    parts = request.path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
        status = max(200, min(599, int(parts[1])))
    line = {
        "action": "received",
        "method": request.method,
        "path": request.path_qs,
        "webhook_id": request.headers.get("webhook-id"),
        "signed": "webhook-signature" in request.headers,
        "answer": status,
        "body": body.decode("utf-8", "replace"),
    }
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()
    return web.json_response({"received": True}, status=status)


def build() -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", _receive)
    return app


def serve(host: str, port: int) -> None:
    print(f"echo: listening on {host}:{port}", flush=True)
    web.run_app(build(), host=host, port=port, print=None, access_log=None)
