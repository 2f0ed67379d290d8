"""Debian's Chromium for the browser tests (scripts/browser.sh installs it; Playwright
never downloads a browser), with the flags this machine's closed network needs."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
