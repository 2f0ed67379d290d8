"""Receive eventtrigger deliveries and verify their Standard Webhooks signatures.

    pip install standardwebhooks
    EVENTTRIGGER_SIGNING_SECRET=whsec_... PORT=9001 python verify.py

Answers 204 to a delivery whose signature is good (and prints `verified <webhook-id>
<body>`), 400 to anything else. Listens on 127.0.0.1 unless HOST says otherwise.
"""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def receiver(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    """A request handler that verifies every request with `webhook`."""

    class Receiver(BaseHTTPRequestHandler):
        def verify(self) -> None:
            # The raw bytes exactly as they arrived: the signature covers these bytes, and
            # JSON parsed and serialised again (other spacing, key order or escapes) is
            # different bytes that no longer match it.
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                # Also refuses a webhook-timestamp more than 5 minutes away from now, so a
                # captured delivery cannot be replayed later.
                webhook.verify(body, dict(self.headers.items()), json_parse=False)
            except WebhookVerificationError:
                self.send_response(400)
                self.end_headers()
                return
            # Handle the event here (json.loads(body)). A delivery can arrive more than
            # once: webhook-id is the same on every attempt, so use it to skip repeats.
            print("verified", self.headers["webhook-id"], body.decode(errors="replace"), flush=True)
            self.send_response(204)
            self.end_headers()

        # A trigger may deliver with any of these methods (GET and DELETE have no body).
        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = verify

    return Receiver


def main() -> None:
    webhook = Webhook(os.environ["EVENTTRIGGER_SIGNING_SECRET"])
    address = (os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "9001")))
    ThreadingHTTPServer(address, receiver(webhook)).serve_forever()


if __name__ == "__main__":
    main()
