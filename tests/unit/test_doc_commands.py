"""Every command a page shows is run somewhere, or says why it cannot be.

A shell block (```sh, ```shell, ```bash or ```console) in README.md or under docs/ must be
one of:
- inside `<!-- walkthrough:begin -->` ... `<!-- walkthrough:end -->` (README.md,
  docs/getting-started.md, docs/reference/api-examples.md: `make compose-check` runs them
  in order, `scripts/walkthrough.py` refreshes their output) or `<!-- deploy-check:begin
  -->` ... `<!-- deploy-check:end -->` (docs/deploy.md, run by `make compose-check`);
- a ```console transcript of docs/how-to/cli.md (tests/e2e/test_cli_doc.py runs them);
- right after `<!-- checked-by: PATH[ (what)] -->`, PATH being the test or script that
  runs the same commands (it must exist);
- right after `<!-- not-run: REASON -->`, for commands that only make sense elsewhere (on
  a cloud VM, in the reader's own shell profile).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.source_tree import require

ROOT = require("README.md", "docs/getting-started.md", "docs/how-to/cli.md")
FENCE = re.compile(r"^```(sh|shell|bash|console)\s*$")
MARKED = re.compile(r"<!-- (walkthrough|deploy-check):(begin|end) -->")
CHECKED_BY = re.compile(r"<!-- checked-by: (\S+)(?: \([^)]*\))? -->")
NOT_RUN = re.compile(r"<!-- not-run: .+ -->")
RUN_BY_TEST = {"docs/how-to/cli.md": "tests/e2e/test_cli_doc.py"}


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(page: Path) -> list[tuple[int, str, str, bool]]:
    """(line number, language, the non-blank line before it, inside run markers)."""
    found = []
    inside = False
    in_fence = False
    previous = ""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if in_fence:
            in_fence = not line.startswith("```")
            continue
        if mark := MARKED.search(line):
            inside = mark[2] == "begin"
        match = FENCE.match(line)
        if match:
            found.append((number, match[1], previous, inside))
            in_fence = True
        elif line.startswith("```"):
            in_fence = True
        if line.strip():
            previous = line.strip()
    return found


def test_every_shell_block_is_run_or_says_why_not() -> None:
    unaccounted = []
    for page in _pages():
        name = page.relative_to(ROOT).as_posix()
        for number, language, previous, inside in _blocks(page):
            if inside or NOT_RUN.fullmatch(previous):
                continue
            if language == "console" and name in RUN_BY_TEST:
                continue
            checked = CHECKED_BY.fullmatch(previous)
            if checked and (ROOT / checked[1]).exists():
                continue
            unaccounted.append(f"{name}:{number}")
    assert not unaccounted, (
        "shell blocks no test or walkthrough runs (put them between run markers, or "
        "precede them with <!-- checked-by: PATH --> or <!-- not-run: REASON -->): "
        + ", ".join(unaccounted)
    )


@pytest.mark.parametrize("page, test", sorted(RUN_BY_TEST.items()))
def test_the_pages_run_by_a_test_have_that_test(page: str, test: str) -> None:
    assert (ROOT / page).is_file() and (ROOT / test).is_file()
