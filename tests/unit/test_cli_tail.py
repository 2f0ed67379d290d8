"""`events tail` through an outage, against a tiny local HTTP server: the stream drops
mid-message, the server goes away (connections refused), answers 503 with Retry-After,
then serves again; tail follows on, with a fresh parser per connection."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventtrigger_client import cmd_events
from eventtrigger_client.api import ApiClient, ApiError, Unreachable
from tests.process import free_port

FIRST = (
    b'event: event\ndata: {"id": "A"}\n\n'
    b": keep-alive\n\n"
    b": the server is stopping; reconnect to go on\n\n"
    b'event: event\ndata: {"id":'  # half a message, then the connection ends
)
AGAIN = b'event: event\ndata: {"id": "B"}\n\n'


class Script:
    """What the server answers, one entry per request: a stream body or a status."""

    def __init__(self, answers: list[bytes | int]) -> None:
        self.answers = answers
        self.served: list[bytes | int] = []


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            script.served.append(answer)
            if isinstance(answer, int):
                body = b'{"title": "Service Unavailable", "detail": "the server is stopping"}'
                self.send_response(answer)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Retry-After", "7")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(answer)  # HTTP/1.0: the stream ends when the connection does

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class Server:
    """The script served on one port, which can be taken down and brought back."""

    def __init__(self, script: Script) -> None:
        self.port = free_port()
        self.script = script
        self.httpd: ThreadingHTTPServer | None = None

    def up(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self.script))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd = None


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(Script([FIRST, 503, AGAIN]))
    running.up()
    yield running
    if running.httpd is not None:
        running.down()


def test_tail_follows_on_through_a_drop_a_refusal_and_a_503(server: Server) -> None:
    client = ApiClient(f"http://127.0.0.1:{server.port}", "k", timeout=5)
    err = io.StringIO()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        # The outage itself: down after the first drop, back up for the next attempt.
        pauses.append(seconds)
        if len(pauses) == 1:
            server.down()
        elif len(pauses) == 2:
            server.up()

    events = cmd_events.stream_events(client, {}, err, sleep=sleep)
    assert next(events) == {"id": "A"}
    # Half a message before the drop is not glued onto the first one after it.
    assert next(events) == {"id": "B"}
    assert server.script.served == [FIRST, 503, AGAIN]
    # Drop (1 s), refused (2 s), then the server's Retry-After (7 s).
    assert pauses == [1.0, 2.0, 7.0]
    said = err.getvalue().splitlines()
    assert said[0] == "following new events (Ctrl-C stops)"
    assert "eventtrigger: server: the server is stopping; reconnect to go on" in said
    assert [line for line in said if "reconnecting" in line] == [
        "eventtrigger: the event stream ended; reconnecting..."
    ]  # once for the whole outage
    [back] = [line for line in said if "reconnected" in line]
    assert "events list --since" in back
    assert not any("keep-alive" in line for line in said)


def test_tail_fails_at_once_when_the_stream_never_opened() -> None:
    client = ApiClient(f"http://127.0.0.1:{free_port()}", "k", timeout=5)
    with pytest.raises(Unreachable):
        next(cmd_events.stream_events(client, {}, io.StringIO(), sleep=lambda s: None))


def test_tail_gives_up_on_other_errors_after_an_outage(server: Server) -> None:
    server.script.answers[:] = [FIRST, 401]
    client = ApiClient(f"http://127.0.0.1:{server.port}", "k", timeout=5)
    events = cmd_events.stream_events(client, {}, io.StringIO(), sleep=lambda s: None)
    assert next(events) == {"id": "A"}
    with pytest.raises(ApiError) as raised:
        next(events)
    assert raised.value.status == 401


def test_reconnect_delays_grow_to_a_ceiling() -> None:
    delays = cmd_events.reconnect_delays()
    assert [next(delays) for _ in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
