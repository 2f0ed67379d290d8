"""`make chaos`: the long fault runs (tests/fault, `chaos` marker) against servers the
tests start themselves, then bench/results/chaos-<date>.md with each scenario's numbers.

The short version of every fault test runs in `make test`; this adds the long ones
(20 s outages at 1,000/s, 1,000-firing kill -9 bursts, 1,000+ schemathesis cases).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).parents[1]


def main() -> int:
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="et-chaos-"))
    numbers, junit = work / "numbers.ndjson", work / "junit.xml"
    env = {**os.environ, "EVENTTRIGGER_CHAOS": "1", "EVENTTRIGGER_CHAOS_RESULTS": str(numbers)}
    selection = sys.argv[1:] or ["tests/fault", "-m", "chaos"]
    code = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-s", f"--junitxml={junit}", *selection],
        cwd=ROOT,
        env=env,
    )
    outcomes = []
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            verdict = "passed"
            for kind in ("failure", "error", "skipped"):
                found = case.find(kind)
                if found is not None:
                    verdict = kind
                    if kind == "skipped" and "xfail" in (found.get("type") or "") + (
                        found.get("message") or ""
                    ):
                        verdict = "xfail (known bug)"
            outcomes.append((case.get("name", "?"), verdict, float(case.get("time", 0))))
    rows = (
        [orjson.loads(line) for line in numbers.read_bytes().splitlines()]
        if numbers.exists()
        else []
    )
    out = ROOT / "bench" / "results" / f"chaos-{started:%Y-%m-%d}.md"
    lines = [
        f"# eventtrigger fault runs (`make chaos`), {started:%Y-%m-%d}",
        "",
        f"- Command: `{' '.join(['pytest', *selection])}` with EVENTTRIGGER_CHAOS=1",
        f"- Date: {started:%H:%M:%S} → {datetime.now(UTC):%H:%M:%S} UTC; pytest exit {code}",
        f"- Machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end (shared)",
        "- Servers: a MariaDB and a Kafka 4.4.0 broker the tests start for themselves",
        "",
        "| test | outcome | seconds |",
        "|---|---|---|",
        *(f"| {name} | {verdict} | {secs:.0f} |" for name, verdict, secs in outcomes),
        "",
        "## Numbers",
        "",
    ]
    for row in rows:
        scenario = row.pop("scenario", "?")
        lines.append(f"- **{scenario}**: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
