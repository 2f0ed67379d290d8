"""The committed docs/openapi.json (the HTTP API reference is generated from it) is the
document a running api process serves at /openapi.json, but for the server URL, which
is each deployment's EVENTTRIGGER_PUBLIC_URL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.source_tree import require

COMMITTED = require("docs/openapi.json") / "docs" / "openapi.json"


def _without_servers(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "servers"}


def _differences(served: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """Where the two differ, by top-level key and, under `paths` and the schemas, by
    path and schema name: enough to see what changed."""
    found = []
    for key in sorted(set(served) | set(committed)):
        if served.get(key) == committed.get(key):
            continue
        if key == "paths" or key == "components":
            mine = served.get(key, {}) if key == "paths" else served.get(key, {}).get("schemas", {})
            theirs = (
                committed.get(key, {})
                if key == "paths"
                else committed.get(key, {}).get("schemas", {})
            )
            names = sorted(n for n in set(mine) | set(theirs) if mine.get(n) != theirs.get(n))
            found.append(f"{key}: {', '.join(names) or '(other parts)'}")
        else:
            found.append(key)
    return found


async def test_served_document_equals_the_committed_one(anonymous: httpx.AsyncClient) -> None:
    answer = await anonymous.get("/openapi.json")
    assert answer.status_code == 200
    served = answer.json()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))

    assert [set(s) for s in served["servers"]] == [{"url"}]
    assert [set(s) for s in committed["servers"]] == [{"url"}]
    served, committed = _without_servers(served), _without_servers(committed)
    assert served == committed, (
        f"docs/openapi.json differs from the served document ({'; '.join(_differences(served, committed))}): "
        "run `make reference` (.venv/bin/python scripts/gen_reference.py)"
    )
