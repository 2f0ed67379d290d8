"""Run the README's walkthrough against a live stack and write the real output back.

    python3 scripts/walkthrough.py            # run it, print each block's output
    python3 scripts/walkthrough.py --update   # ... and replace the ```text blocks in README.md

The walkthrough is every ```sh block between `<!-- walkthrough:begin -->` and
`<!-- walkthrough:end -->`, run in order in one bash process (later blocks use the
variables earlier ones set). The ```text block right after a ```sh block is its output.
`make compose-check` runs the same blocks, so the README cannot drift from what the stack
does; this script keeps the shown output real.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- walkthrough:begin -->", "<!-- walkthrough:end -->"
BLOCK = re.compile(r"```sh\n(.*?)```\n(?:```text\n.*?```\n)?", re.S)
MARK = "@@walkthrough-block@@"


def run(blocks: list[str]) -> list[str]:
    script = "set -euo pipefail\n" + "".join(f"echo {MARK}\n{b}" for b in blocks)
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=README.parent, timeout=300
    )
    parts = done.stdout.split(MARK + "\n")[1:]
    if done.returncode != 0:
        sys.exit(f"walkthrough failed in block {len(parts)}:\n{done.stdout}\n{done.stderr}")
    return [p.rstrip("\n") for p in parts]


def main() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END)
    section = text[start:end]
    blocks = [m.group(1) for m in BLOCK.finditer(section)]
    outputs = iter(run(blocks))

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
