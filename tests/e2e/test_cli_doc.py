"""docs/how-to/cli.md's transcripts, run for real: every ```console block of the page is one
bash session against a real `eventtrigger run` process (real MariaDB and Kafka) and a real
`eventtrigger echo` receiver, and each `$ ` command's output must be the page's.

The page is written as a reader sees it: the API at `http://localhost:8080` with the key
`dev-key-change-me` (`make run`), the receiver at `http://127.0.0.1:9000`
(`eventtrigger echo --port 9000`), the home directory `/home/you`. The test runs the API
and the receiver on free ports and a home of its own (where `login` writes its config
file), swaps the page's addresses for the real ones in each command it runs, and back in
what the command printed. Lines starting with `$ ` are commands, `> ` lines continue the
command above (a heredoc), and the lines up to the next command are its output (stdout
and stderr together, as a terminal shows them). Commands run one at a time in the
block's shell, so variables, `export` and `unset` carry over within a block; the server
and the home directory are shared by all blocks, in page order.

Before comparing, what differs from run to run is normalised in both texts: ids (ULIDs),
webhook URL tokens, `whsec_` secrets and `etk_` keys, times and dates, relative times
(`(in 30s)`, `(2s ago)`, `(now)`), durations in seconds (`13ms`, `1.2s`) and the padding
between table columns. The ids, tokens, secrets and keys of the page's outputs are paired,
in order, with the real ones, so a later command that names one (`triggers pause 01M...`)
runs with the real one. A mismatch fails naming each command and showing both outputs.

To refresh the page after the CLI's output changed, run the test with
`EVENTTRIGGER_UPDATE_DOCS=1`: instead of failing, it writes each command's real output
(and the commands, with this run's ids) back into the page; review the diff
(`git diff docs/how-to/cli.md`), then run the test again without it.

`events tail` never ends, so the page describes it in prose with a sample line (a
```text block, which this test does not run); tests/e2e/test_cli_parity_commands.py
proves its output.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import e2e_environ
from tests.process import EventtriggerProcess, free_port
from tests.source_tree import require

PAGE = require("docs/how-to/cli.md") / "docs" / "how-to" / "cli.md"
PAGE_API = "http://localhost:8080"
PAGE_RECEIVER = "http://127.0.0.1:9000"
PAGE_KEY = "dev-key-change-me"
PAGE_HOME = "/home/you"
UPDATE = os.environ.get("EVENTTRIGGER_UPDATE_DOCS") == "1"
ECHO = (sys.executable, "-m", "eventtrigger.cli", "echo")
END = "@@eventtrigger-doc-command-end@@"

# What changes from run to run, each with what it becomes for comparing.
TOKEN = re.compile(
    r"\b[0-9A-HJKMNP-TV-Z]{26}\b"  # ULID
    r"|(?<=/api/v1/webhook/)[A-Za-z0-9_-]+"  # webhook URL token
    r"|whsec_[A-Za-z0-9+/=]+"
    r"|etk_[a-z2-7]+"
)
VARYING = [
    (re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b"), "<id>"),
    (re.compile(r"(?<=/api/v1/webhook/)[A-Za-z0-9_-]+"), "<token>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_<secret>"),
    (re.compile(r"etk_[a-z2-7]+"), "etk_<key>"),
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"\((?:now|in [^()]+|[^()]+ ago)\)"), "(<relative>)"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:ms|s)\b"), "<duration>"),
    (re.compile(r"(?<=\S) {2,}"), "  "),  # column padding
    (re.compile(r"[ \t]+$", re.MULTILINE), ""),
]


@dataclass
class Step:
    command: str  # as on the page (continuation lines joined with newlines)
    output: str  # as on the page


@dataclass
class Block:
    start: int  # index of the first line inside the fence
    end: int  # index of the closing fence
    steps: list[Step] = field(default_factory=list)


def console_blocks(lines: list[str]) -> list[Block]:
    """The page's ```console blocks, parsed into commands and their outputs."""
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```console":
            index += 1
            continue
        block = Block(start=index + 1, end=index + 1)
        command: list[str] = []
        output: list[str] = []
        index += 1
        while lines[index].strip() != "```":
            line = lines[index]
            if line.startswith("$ "):
                if command:
                    block.steps.append(Step("\n".join(command), "\n".join(output)))
                command, output = [line[2:]], []
            elif line.startswith("> ") and command and not output:
                command.append(line[2:])
            else:
                assert command, f"line {index + 1} of {PAGE.name}: output before any command"
                output.append(line)
            index += 1
        if command:
            block.steps.append(Step("\n".join(command), "\n".join(output)))
        block.end = index
        blocks.append(block)
        index += 1
    return blocks


def normalised(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text.strip("\n")


def render_command(command: str) -> list[str]:
    first, *rest = command.split("\n")
    return [f"$ {first}", *(f"> {line}" for line in rest)]


class Addresses:
    """Swaps the page's addresses and key for the test's, and back."""

    def __init__(self, api: str, receiver: str, key: str, home: Path) -> None:
        self._to_real = [
            (PAGE_API, api),
            (PAGE_RECEIVER, receiver),
            (PAGE_KEY, key),
            (PAGE_HOME, str(home)),
        ]

    def real(self, text: str) -> str:
        for page, real in self._to_real:
            text = text.replace(page, real)
        return text

    def page(self, text: str) -> str:
        for page, real in self._to_real:
            text = text.replace(real, page)
        return text


class Session:
    """One bash session fed one command at a time (variables, `export` and `cd` carry
    over), so that a command can name an id the one before it printed."""

    def __init__(self, shell: asyncio.subprocess.Process) -> None:
        self._shell = shell

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> Session:
        shell = await asyncio.create_subprocess_exec(
            "bash",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
        return cls(shell)

    async def run(self, command: str, timeout: float = 180.0) -> str:
        """Run `command` (its stdin empty, stderr with stdout); what it printed."""
        assert self._shell.stdin is not None and self._shell.stdout is not None
        self._shell.stdin.write(
            f"{{ {command}\n}} </dev/null 2>&1\nprintf '\\n%s\\n' '{END}'\n".encode()
        )
        await self._shell.stdin.drain()
        try:
            printed = await asyncio.wait_for(
                self._shell.stdout.readuntil(f"\n{END}\n".encode()), timeout
            )
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            raise AssertionError(f"$ {command}\nended its shell or ran over {timeout}s") from exc
        return printed.decode().removesuffix(f"\n{END}\n").strip("\n")

    async def close(self) -> None:
        assert self._shell.stdin is not None
        if self._shell.returncode is None:
            self._shell.stdin.close()
            try:
                await asyncio.wait_for(self._shell.wait(), 30)
            except TimeoutError:
                self._shell.kill()
                await self._shell.wait()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    """`eventtrigger echo` on a free port of 127.0.0.1; its base URL."""
    port = free_port()
    with (tmp_path / "echo.log").open("wb") as log:
        echo = subprocess.Popen(
            [*ECHO, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert echo.poll() is None, (tmp_path / "echo.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "eventtrigger echo did not start"
            time.sleep(0.05)
        yield url
    finally:
        echo.terminate()
        echo.wait(30)


def shell_env(home: Path) -> dict[str, str]:
    """A reader's shell: no EVENTTRIGGER_ settings, a fresh home (so `login` writes its
    config file there), this virtualenv's `eventtrigger` on PATH, UTC."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTTRIGGER_")}
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("COLUMNS", None)
    env.update(
        HOME=str(home),
        TZ="UTC",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


async def test_cli_how_to_transcripts_match_real_output(
    launch: Callable[..., EventtriggerProcess], receiver: str, tmp_path: Path
) -> None:
    proc = launch(env=e2e_environ(EVENTTRIGGER_API_KEYS=PAGE_KEY))
    home = tmp_path / "home"
    addresses = Addresses(proc.base_url, receiver, PAGE_KEY, home)
    work = home / "work"
    work.mkdir(parents=True)
    env = shell_env(home)

    lines = PAGE.read_text().split("\n")
    blocks = console_blocks(lines)
    assert len(blocks) >= 5 and all(block.steps for block in blocks), "the page lost its examples"
    tokens: dict[str, str] = {}  # the page's id/secret/key -> the real one of this run
    mismatches: list[str] = []
    for block in blocks:
        session = await Session.start(env, work)
        try:
            for step in block.steps:
                command = addresses.real(TOKEN.sub(lambda m: tokens.get(m[0], m[0]), step.command))
                real = addresses.page(await session.run(command))
                same = normalised(real) == normalised(step.output)
                page_tokens, real_tokens = TOKEN.findall(step.output), TOKEN.findall(real)
                if (same or UPDATE) and len(page_tokens) == len(real_tokens):
                    # The first match wins: a later output may name the same id again.
                    for page_token, real_token in zip(page_tokens, real_tokens, strict=True):
                        tokens.setdefault(page_token, real_token)
                if UPDATE:
                    step.command, step.output = addresses.page(command), real
                elif not same:
                    mismatches.append(
                        f"$ {step.command}\n--- the page says:\n{step.output}\n"
                        f"--- it printed:\n{real}\n"
                    )
        finally:
            await session.close()
    if UPDATE:
        for block in reversed(blocks):
            body: list[str] = []
            for step in block.steps:
                body += render_command(step.command)
                body += step.output.split("\n") if step.output else []
            lines[block.start : block.end] = body
        PAGE.write_text("\n".join(lines))
        return
    assert not mismatches, f"{PAGE.name}: output differs from the page:\n\n" + "\n".join(mismatches)
