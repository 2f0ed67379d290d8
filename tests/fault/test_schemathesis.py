"""Property-based API fuzzing with schemathesis over /openapi.json: every operation, a
seeded and bounded number of generated cases (1,000+ in the chaos run), no 5xx, and every
response conforms to the document (status code, content type, headers, body schema).

Runs against a real `eventtrigger run --roles=api` on this session's own servers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import log_lines
from tests.fault.conftest import CHAOS, record_result
from tests.process import EventtriggerProcess

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (.venv/bin/pip install schemathesis)")
    return found


EXAMPLES = [pytest.param(8, id="short"), pytest.param(60, id="chaos", marks=pytest.mark.chaos)]


async def _fuzz(
    examples: int, checks: str, flaunch: Callable[..., EventtriggerProcess], tmp_path: Path
) -> tuple[int, str, int, dict[int, int], Path]:
    """Run schemathesis once: (exit code, output, cases, response status counts, the
    platform's log)."""
    tool = _schemathesis()
    proc = flaunch(roles="api")
    report = report_of(tmp_path)
    command = [
        tool,
        "run",
        f"{proc.base_url}/openapi.json",
        "--checks",
        checks,
        "--header",
        f"Authorization: Bearer {TEST_API_KEY}",
        "--max-examples",
        str(examples),
        "--generation-deterministic",  # the same cases every run: no flakes
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=600 if CHAOS else 150
    )
    cases, statuses = _count(report)
    return done.returncode, done.stdout + done.stderr, cases, statuses, proc.log_path


@pytest.mark.parametrize("examples", EXAMPLES)
async def test_openapi_fuzzing_gets_no_5xx(
    examples: int, flaunch: Callable[..., EventtriggerProcess], fdb: Database, tmp_path: Path
) -> None:
    _, output, cases, statuses, log = await _fuzz(examples, "not_a_server_error", flaunch, tmp_path)
    record_result(
        scenario=f"schemathesis-{examples}-examples",
        cases=cases,
        responses_5xx=sum(n for s, n in statuses.items() if s >= 500),
        statuses=dict(sorted(statuses.items())),
    )
    assert cases >= (1000 if examples >= 60 else 300), output[-3000:]
    errors = _server_errors(report_of(tmp_path))
    causes = [
        str(line.get("msg"))
        for line in log_lines(log)
        if line.get("action") in ("dependency_error", "internal_error")
    ]
    assert errors == [], (errors, causes, output[-6000:])


@pytest.mark.xfail(
    strict=True,
    reason="schemathesis cannot generate bodies for POST /api/v1/triggers and POST "
    "/api/v1/test-runs (Schema Error: the config oneOf over four overlapping config schemas); "
    "the other finding, GET /events' oneOf, is fixed (anyOf)",
)
@pytest.mark.parametrize("examples", EXAMPLES)
async def test_openapi_fuzzing_every_response_conforms_to_the_document(
    examples: int, flaunch: Callable[..., EventtriggerProcess], fdb: Database, tmp_path: Path
) -> None:
    code, output, _, _, _ = await _fuzz(examples, CHECKS, flaunch, tmp_path)
    assert code == 0, output[-6000:]


def report_of(tmp_path: Path) -> Path:
    return tmp_path / "schemathesis.ndjson"


def _server_errors(report: Path) -> list[tuple[str, str, int]]:
    """(method, uri, status) of every 5xx response in schemathesis's ndjson events."""
    found = set()
    for line in report.read_text().splitlines() if report.exists() else []:
        finished = json.loads(line).get("ScenarioFinished") or {}
        for interaction in (finished.get("recorder") or {}).get("interactions", {}).values():
            response = interaction.get("response") or {}
            if response.get("status_code", 0) >= 500:
                request = interaction["request"]
                found.add((request["method"], request["uri"], response["status_code"]))
    return sorted(found)


def _count(report: Path) -> tuple[int, dict[int, int]]:
    """Test cases run and response status counts, from schemathesis's ndjson events."""
    cases = 0
    statuses: dict[int, int] = {}
    if not report.exists():
        return 0, statuses
    for line in report.read_text().splitlines():
        for status in _statuses(json.loads(line)):
            cases += 1
            statuses[status] = statuses.get(status, 0) + 1
    return cases, statuses


def _statuses(node: object) -> list[int]:
    """Every `status_code` of a response object anywhere in an event (format-agnostic)."""
    found: list[int] = []
    if isinstance(node, dict):
        code = node.get("status_code")
        if isinstance(code, int) and "elapsed" in node:
            found.append(code)
        for value in node.values():
            found.extend(_statuses(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_statuses(value))
    return found
