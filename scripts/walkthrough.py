"""Run the README's walkthrough against a live stack and write the real output back.

    python3 scripts/walkthrough.py                   # run it, print each block's output
    python3 scripts/walkthrough.py --update          # ... and replace README's ```text blocks
    python3 scripts/walkthrough.py --fresh --update  # on a stack of its own, made for the run

The walkthrough is every ```sh block between `<!-- walkthrough:begin -->` and
`<!-- walkthrough:end -->`, run in order in one bash process (later blocks use the
variables earlier ones set). The ```text block right after a ```sh block is its output.
`make compose-check` runs the same blocks, so the README cannot drift from what the stack
does; this script keeps the shown output real.

Without --fresh the blocks run against whatever `docker compose` reaches from the repo
root (your stack, with your .env). With --fresh they run against a new stack under the
compose project `eventtrigger-walkthrough`, with the defaults of a fresh clone (no .env):
`docker compose up -d --wait` before, `docker compose down -v` after, so the counts and
lists shown are those of a first run. Port 8080 must be free for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- walkthrough:begin -->", "<!-- walkthrough:end -->"
BLOCK = re.compile(r"```sh\n(.*?)```\n(?:```text\n.*?```\n)?", re.S)
MARK = "@@walkthrough-block@@"
FRESH_PROJECT = "eventtrigger-walkthrough"


def run(blocks: list[str], env: dict[str, str]) -> list[str]:
    script = "set -euo pipefail\n" + "".join(f"echo {MARK}\n{b}" for b in blocks)
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    parts = done.stdout.split(MARK + "\n")[1:]
    if done.returncode != 0:
        sys.exit(f"walkthrough failed in block {len(parts)}:\n{done.stdout}\n{done.stderr}")
    return [p.rstrip("\n") for p in parts]


def compose(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"docker compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def main() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END)
    section = text[start:end]
    blocks = [m.group(1) for m in BLOCK.finditer(section)]

    env = dict(os.environ)
    fresh = "--fresh" in sys.argv
    if fresh:
        # A fresh clone's defaults: no .env, and none of the caller's settings that the
        # compose file would pick up from the environment.
        env = {k: v for k, v in env.items() if not k.startswith(("EVENTTRIGGER_", "COMPOSE_"))}
        env |= {"COMPOSE_PROJECT_NAME": FRESH_PROJECT, "COMPOSE_ENV_FILES": os.devnull}
        print(f"starting a fresh stack ({FRESH_PROJECT}) ...", file=sys.stderr)
        compose(env, "up", "-d", "--wait", "--wait-timeout", "300")
    try:
        outputs = iter(run(blocks, env))
    finally:
        if fresh:
            compose(env, "down", "-v", "--remove-orphans")

    def render(match: re.Match[str]) -> str:
        out = next(outputs)
        shown = f"```text\n{out}\n```\n" if out.strip() else ""
        return f"```sh\n{match.group(1)}```\n{shown}"

    new_section = BLOCK.sub(render, section)
    if "--update" in sys.argv:
        README.write_text(text[:start] + new_section + text[end:])
        print(f"README.md: {len(blocks)} walkthrough blocks refreshed")
    else:
        print(new_section)


if __name__ == "__main__":
    main()
