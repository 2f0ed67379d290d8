#!/usr/bin/env bash
# Command-line tools some tests drive, installed from Debian's packages when missing
# (idempotent; `make test` runs it):
#   jq, curl   the command-line client's how-to page pipes into them (tests/e2e/test_cli_doc.py)
#   zsh, fish  the completion scripts are loaded by the real shells (tests/unit/test_cli_completion.py)
set -euo pipefail
missing=()
for tool in jq curl zsh fish; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "test-tools: missing ${missing[*]}; install them (apt-get install ${missing[*]}) for the tests that use them" >&2
    exit 1
fi
mkdir -p .local
log=.local/test-tools-apt.log
echo "test-tools: installing ${missing[*]}"
{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } \
    >"$log" 2>&1 || { tail -20 "$log" >&2; echo "test-tools: apt-get failed (see $log)" >&2; exit 1; }
