"""Run the documentation's walkthrough against a live stack and write the real output back.

    python3 scripts/walkthrough.py                   # run it, print each page's marked section
    python3 scripts/walkthrough.py --update          # ... and replace the pages' ```text blocks
    python3 scripts/walkthrough.py --fresh --update  # on a stack of its own, made for the run

The walkthrough is every ```sh block between `<!-- walkthrough:begin -->` and
`<!-- walkthrough:end -->` of the pages in PAGES (the README's 30-second example, then
docs/getting-started.md, then docs/reference/api-examples.md), run in that order in one
bash process: later blocks, on the same page or the next, use the variables earlier ones
set. The ```text block right after a ```sh block is its output. `make compose-check`
runs the same blocks in the same order, so the pages cannot drift from what the stack
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
# In the order they run; scripts/compose-check.sh (step 4) lists the same pages.
PAGES = (
    ROOT / "README.md",
    ROOT / "docs" / "getting-started.md",
    ROOT / "docs" / "reference" / "api-examples.md",
)
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


def section(text: str, page: Path) -> tuple[int, int]:
    """Where the marked walkthrough section of a page's text starts and ends."""
    try:
        return text.index(BEGIN), text.index(END)
    except ValueError:
        sys.exit(f"{page.relative_to(ROOT)}: no {BEGIN} ... {END} section")


def main() -> None:
    if "-h" in sys.argv or "--help" in sys.argv:
        print(__doc__)
        return
    texts = [page.read_text() for page in PAGES]
    spans = [section(text, page) for text, page in zip(texts, PAGES, strict=True)]
    sections = [text[start:end] for text, (start, end) in zip(texts, spans, strict=True)]
    blocks = [m.group(1) for part in sections for m in BLOCK.finditer(part)]

    env = dict(os.environ)
    fresh = "--fresh" in sys.argv
    if fresh:
        # A fresh clone's defaults: no .env, and none of the caller's settings that the
        # compose file would pick up from the environment.
        env = {k: v for k, v in env.items() if not k.startswith(("EVENTTRIGGER_", "COMPOSE_"))}
        env |= {"COMPOSE_PROJECT_NAME": FRESH_PROJECT, "COMPOSE_ENV_FILES": os.devnull}
        print(f"starting a fresh stack ({FRESH_PROJECT}) ...", file=sys.stderr)
        compose(env, "up", "-d", "--build", "--wait", "--wait-timeout", "300")
    try:
        outputs = iter(run(blocks, env))
    finally:
        if fresh:
            compose(env, "down", "-v", "--remove-orphans")

    def render(match: re.Match[str]) -> str:
        out = next(outputs)
        shown = f"```text\n{out}\n```\n" if out.strip() else ""
        return f"```sh\n{match.group(1)}```\n{shown}"

    # The outputs are consumed page by page, in the order the blocks ran.
    for page, text, (start, end), part in zip(PAGES, texts, spans, sections, strict=True):
        new_part = BLOCK.sub(render, part)
        name = page.relative_to(ROOT)
        if "--update" in sys.argv:
            page.write_text(text[:start] + new_part + text[end:])
            print(f"{name}: {len(BLOCK.findall(part))} walkthrough blocks refreshed")
        else:
            print(f"==> {name}\n{new_part}")


if __name__ == "__main__":
    main()
