"""Named SQL queries, kept in `queries/*.sql` (procrastinate style).

A file holds blocks that start with `-- name: <query_name>`; the query is known as
`<file stem>.<query_name>`. Loaded once at import; a missing name fails loudly.
"""

from __future__ import annotations

import re
from pathlib import Path

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load(directory: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        parts = _HEADER.split(path.read_text())
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
            queries[f"{path.stem}.{name}"] = "\n".join(lines).strip().rstrip(";")
    return queries


Q = load(Path(__file__).parent / "queries")
