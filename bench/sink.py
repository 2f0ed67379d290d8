"""The benchmark's HTTP sink: a separate process that answers every delivery with 200.

It listens on `--ports` ports of 127.0.0.1 (each one a distinct endpoint host:port, so
per-host limits in the platform apply as they would for different users) and records,
for every request, the arrival time (wall clock, comparable with scheduled times), the
port, the path, the `webhook-id` header and the `i`/`due` fields of a JSON body.

The first port also serves the control endpoints the harness uses:
`GET /_bench/records?prefix=/S1` (records whose path starts with prefix, as JSON) and
`POST /_bench/reset`. The ports it bound are written to `--ready-file` as JSON once it
is listening, so the harness never has to guess free ports.

    python3 -m bench.sink --ports 100 --ready-file /tmp/sink.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

Record = tuple[float, int, str, str, Any, Any]


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    async def deliver(self, request: web.Request) -> web.Response:
        # Stamped before the body is read: arrival is when the platform's request got here.
        at = time.time()
        i: Any = None
        due: Any = None
        body = await request.read()
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                i, due = payload.get("i"), payload.get("due")
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        wid = request.headers.get("webhook-id", "")
        self.records.append((at, port, request.path, wid, i, due))
        return web.Response(status=200, text="ok")

    async def dump(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        rows = [r for r in self.records if r[2].startswith(prefix)]
        return web.json_response(rows)

    async def reset(self, request: web.Request) -> web.Response:
        self.records.clear()
        return web.json_response({"ok": True})


async def serve(ports: int, ready_file: Path) -> None:
    sink = Sink()
    app = web.Application(client_max_size=2**20)
    app.router.add_get("/_bench/records", sink.dump)
    app.router.add_post("/_bench/reset", sink.reset)
    app.router.add_route("*", "/{tail:.*}", sink.deliver)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    bound: list[int] = []
    for _ in range(ports):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        bound.append(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    # Written atomically: the harness polls for the file and must never read half of it.
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "ports": bound}))
    tmp.replace(ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=100)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.ports, args.ready_file))


if __name__ == "__main__":
    main()
