"""The receivers of docs/how-to/verify-deliveries.md (docs/snippets/{python,node,go}) run as
a user would run them, against a real signed delivery: the real `eventtrigger` process,
real MariaDB and Kafka, a webhook trigger whose endpoint is the snippet on 127.0.0.1.

Each snippet must print `verified <event id> <body>` for the delivery and answer 204 (so
the event succeeds), and answer 400 to requests whose signature does not match: a body
re-serialised after signing (the same request as signed is accepted), and a signature
made with another secret. The page must show each snippet byte for byte.

Node and Go are installed and built once per session in a temporary copy (`npm ci`, `go
build`; nothing is cached in the repository); a missing toolchain skips its language. The
whole module skips when docs/snippets is not next to the tests (a copy of tests/ alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from eventtrigger.domain.signing import sign
from eventtrigger.ids import new_signing_secret
from eventtrigger.store.db import Database
from tests.e2e.conftest import create_trigger, fire_webhook, wait_for_event, wait_until
from tests.process import EventtriggerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = REPO / "docs" / "snippets"
PAGE = REPO / "docs" / "how-to" / "verify-deliveries.md"
# What the page shows, as paths under docs/snippets (the lock files are not shown).
SHOWN = {"python/verify.py", "node/verify.js", "node/package.json", "go/main.go", "go/go.mod"}
BUILD_TIMEOUT = 600.0  # a first `npm ci` or `go build` downloads; later ones are quick

pytestmark = pytest.mark.skipif(
    not SNIPPETS.is_dir(),
    reason=f"{SNIPPETS} is absent: these tests need the repository's docs/snippets next to tests/",
)


@dataclass(frozen=True)
class Snippet:
    """How to start one language's receiver."""

    language: str
    argv: list[str]
    cwd: Path


class Receiver:
    """A running snippet; its stdout and stderr go to files."""

    def __init__(self, snippet: Snippet, port: int, secret: str, logs: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/deliveries"
        self.port = port
        self.stdout = logs / f"{snippet.language}.out"
        self.stderr = logs / f"{snippet.language}.err"
        environ = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "EVENTTRIGGER_SIGNING_SECRET": secret,
            # The printed body is UTF-8 whatever this machine's locale is.
            "PYTHONIOENCODING": "utf-8",
        }
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                snippet.argv, cwd=snippet.cwd, env=environ, stdout=out, stderr=err
            )

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        errors = self.stderr.read_text(encoding="utf-8", errors="replace")
        return f"stdout:\n{self.output()}\nstderr:\n{errors}"

    async def listening(self) -> None:
        async def accepts() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the receiver exited early:\n{self.describe()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await wait_until(accepts, timeout=30.0, interval=0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"


def _copy(language: str, into: Path) -> Path:
    """A copy of the language's snippet directory, so installs and builds leave the
    repository untouched."""
    target = into / language
    shutil.copytree(SNIPPETS / language, target)
    return target


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"`{name}` is not installed on this machine")
    return found


@pytest.fixture(scope="session", params=["python", "node", "go"])
def snippet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Snippet:
    """Each language's receiver, installed and built once per session."""
    language: str = request.param
    work = tmp_path_factory.mktemp(f"snippet-{language}")
    if language == "python":
        # The test environment has standardwebhooks (a dev dependency), as a user's would.
        copy = _copy(language, work)
        return Snippet(language, [sys.executable, str(copy / "verify.py")], copy)
    if language == "node":
        node, npm = _tool("node"), _tool("npm")
        copy = _copy(language, work)
        _run([npm, "ci", "--no-audit", "--no-fund"], copy)
        return Snippet(language, [node, "verify.js"], copy)
    go = _tool("go")
    copy = _copy(language, work)
    _run([go, "build", "-o", str(work / "verify"), "."], copy)
    return Snippet(language, [str(work / "verify")], copy)


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[[Snippet, int, str], Receiver]]:
    """Start snippets (`receivers(snippet, port, secret)`); all are stopped after the test."""
    started: list[Receiver] = []

    def _start(snippet: Snippet, port: int, secret: str) -> Receiver:
        receiver = Receiver(snippet, port, secret, tmp_path)
        started.append(receiver)
        return receiver

    yield _start
    for receiver in started:
        receiver.stop()


def _verified(receiver: Receiver, event_id: str) -> list[str]:
    """The bodies the receiver printed as verified for `event_id`."""
    prefix = f"verified {event_id} "
    return [
        line[len(prefix) :] for line in receiver.output().splitlines() if line.startswith(prefix)
    ]


async def test_snippet_verifies_a_real_delivery_and_refuses_a_bad_signature(
    snippet: Snippet,
    receivers: Callable[[Snippet, int, str], Receiver],
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    proc = launch()
    port = free_port()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": f"http://127.0.0.1:{port}/deliveries",
                "schema": {"type": "object"},
                "retry": {"max_attempts": 1},
            },
            name=f"{snippet.language} receiver",
        )
    secret = trigger["signing_secret"]
    receiver = receivers(snippet, port, secret)
    await receiver.listening()

    # A non-ASCII string too: the signature covers the UTF-8 bytes as sent.
    payload = {"order_id": 42, "customer": "Zoë", "items": [{"sku": "A-1", "qty": 2}]}
    event_id = await fire_webhook(trigger["webhook_url"], payload)
    row = await wait_for_event(db, event_id)
    assert (row["status"], row["last_status_code"]) == ("success", 204), receiver.describe()
    # Printed before the 204 was sent, so it is there now that the event succeeded.
    bodies = _verified(receiver, event_id)
    assert len(bodies) == 1, receiver.describe()
    assert json.loads(bodies[0]) == payload

    # A request signed over compact JSON: accepted as sent (the control), refused once
    # re-serialised with spaces (as a framework that parses and re-encodes the body
    # would): same data, other bytes.
    resent_id = "msg_resent"
    timestamp = int(time.time())
    compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    spaced = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": resent_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, resent_id, timestamp, compact),
    }
    # Another secret's signature over the very bytes sent.
    other_id = "msg_other_secret"
    other = {
        **headers,
        "webhook-id": other_id,
        "webhook-signature": sign(new_signing_secret(), other_id, timestamp, compact),
    }
    async with httpx.AsyncClient(timeout=10) as anonymous:
        as_signed = await anonymous.post(receiver.url, content=compact, headers=headers)
        reserialised = await anonymous.post(receiver.url, content=spaced, headers=headers)
        other_secret = await anonymous.post(receiver.url, content=compact, headers=other)
    assert as_signed.status_code == 204, receiver.describe()
    assert reserialised.status_code == 400, receiver.describe()
    assert other_secret.status_code == 400, receiver.describe()
    assert _verified(receiver, resent_id) == [compact.decode()], receiver.describe()
    assert _verified(receiver, other_id) == [], receiver.describe()


def _code_blocks(page: str) -> dict[str, str]:
    """The page's fenced code blocks with a title, by title."""
    fence = re.compile(r'^```[\w+-]+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)
    blocks: dict[str, str] = {}
    for title, code in fence.findall(page):
        assert title not in blocks, f"{title} is shown twice"
        blocks[title] = code
    return blocks


def test_page_shows_each_snippet_verbatim() -> None:
    # Bytes decoded, not read_text: that would translate line endings.
    blocks = _code_blocks(PAGE.read_bytes().decode("utf-8"))
    assert set(blocks) == SHOWN
    for title, code in blocks.items():
        assert code == (SNIPPETS / title).read_bytes().decode("utf-8"), (
            f"the page's {title} differs from the file"
        )
