#!/usr/bin/env bash
# Do the version floors in pyproject.toml really work? Installs every runtime dependency
# at exactly its floor (`name>=X` becomes `name==X`) into a throw-away venv, checks they
# agree (`pip check`), then runs the tests that use what each floor is there for:
#   jsonschema-rs  validator_for(offline=True), error kinds     tests/unit
#   aiohttp        the SSRF guard's resolver hook (ResolveResult) tests/e2e/test_ssrf.py
#   cryptography   AESGCM (signing secrets at rest)          tests/unit/test_secretbox.py
#   starlette, uvicorn, asyncmy, aiokafka                     tests/api, tests/e2e (real
#                  process, real MariaDB and Kafka)
# Needs the network (PyPI) and `make services`; about 1-2 minutes, so it is a script for
# CI (.ci/run), not part of `make test`.
#
#   scripts/check-floors.sh [pyproject.toml]   # another file to try proposed floors
set -euo pipefail
cd "$(dirname "$0")/.."
pyproject=${1:-pyproject.toml}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" - "$pyproject" >"$work/floors.txt" <<'EOF'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
for dep in deps:
    spec, _, marker = dep.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([^,\s]+)\s*", spec)
    if match is None:
        sys.exit(f"check-floors: no '>=' floor to pin in {dep!r}")
    print(f"{match[1]}=={match[2]}" + (f"; {marker.strip()}" if marker else ""))
EOF
echo "check-floors: installing the floors:" $(cut -d';' -f1 "$work/floors.txt")
"$python" -m venv "$work/venv"
pip=("$work/venv/bin/pip" --quiet --disable-pip-version-check)
"${pip[@]}" install -r "$work/floors.txt"
# Test tools at any version, but never moving a floor: the floors are constraints.
"${pip[@]}" install -c "$work/floors.txt" pytest pytest-asyncio httpx standardwebhooks \
    openapi-spec-validator
"${pip[@]}" install --no-deps .
"$work/venv/bin/pip" check
names=$(cut -d'=' -f1 "$work/floors.txt" | sed 's/[-_.]/[-_.]/g' | paste -sd'|')
"$work/venv/bin/pip" freeze | grep -iE "^($names)==" | sed 's/^/check-floors: installed /'

# From a directory without the source tree, so the installed package is what runs.
cp -r tests "$work/tests"
cp -r config "$work/config"  # tests read config/example.env
mkdir -p "$work/docs" && cp -r docs/grafana "$work/docs/grafana"  # and the dashboard
cp pyproject.toml "$work/pyproject.toml"
cd "$work"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/unit \
    tests/api/test_rotation.py tests/api/test_operations.py tests/api/test_auth_and_bodies.py \
    tests/e2e/test_ssrf.py tests/e2e/test_api_trigger.py tests/e2e/test_one_shot.py \
    tests/e2e/test_rotation.py
echo "check-floors: every floor works"
