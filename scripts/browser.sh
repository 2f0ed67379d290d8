#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed at /usr/bin/chromium, from
# Debian's `chromium` package.  The dashboard's browser test drives it with
# Playwright (never `playwright install`: no browser downloads from elsewhere).
#
# * Idempotent: does nothing when /usr/bin/chromium already runs.
# * Quiet on success; on failure it exits non-zero, says what failed and shows
#   the end of the apt log.
# Usage: bash scripts/browser.sh   (called by `make services`)

set -Eeuo pipefail

CHROMIUM=/usr/bin/chromium
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG=$ROOT/.local/browser-apt.log

fail() {
    echo "browser.sh: FAILED: $*" >&2
    if [[ -s $LOG ]]; then
        echo "---- last 25 lines of $LOG ----" >&2
        tail -n 25 "$LOG" >&2
        echo "---- end of $LOG ----" >&2
    fi
    exit 1
}
trap 'fail "unexpected error at line $LINENO: $BASH_COMMAND"' ERR

# Does the installed browser start?  (Debian's wrapper script may print noise on
# stderr; only the exit status and the version line count.)
chromium_runs() {
    [[ -x $CHROMIUM ]] || return 1
    timeout 60 "$CHROMIUM" --headless --no-sandbox --version 2>/dev/null | grep -q Chromium
}

chromium_runs && exit 0

mkdir -p "$ROOT/.local"
: >"$LOG"
[[ $(id -u) -eq 0 ]] || fail "$CHROMIUM is missing and installing it needs root: run 'apt-get install chromium' as root, then re-run"
command -v apt-get >/dev/null || fail "$CHROMIUM is missing and there is no apt-get to install Debian's chromium package"

# Refresh the package lists at most once: up front when the package is unknown
# to the lists on the machine, else only if installing from them fails (stale
# lists name a version that is gone from the mirror).
updated=0
update_once() {
    [[ $updated -eq 0 ]] || return 0
    apt-get update >>"$LOG" 2>&1 || fail "apt-get update failed"
    updated=1
}
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$LOG" 2>&1
}
apt-cache show chromium >/dev/null 2>&1 || update_once
if ! install; then
    [[ $updated -eq 0 ]] || fail "apt-get install chromium failed"
    update_once
    install || fail "apt-get install chromium failed"
fi
chromium_runs || fail "chromium was installed but '$CHROMIUM --version' does not run"
