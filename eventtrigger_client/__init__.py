"""The `eventtrigger triggers ...` / `eventtrigger events ...` command-line client.

It talks to a running API over HTTP only (`EVENTTRIGGER_URL`, `EVENTTRIGGER_API_KEY`) and
uses nothing but the standard library, so it needs no database or Kafka settings and
starts fast. `api` makes the requests, `render` turns answers into tables, `commands`
wires both to argparse and chooses exit codes.
"""

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    # Installed with the server (`eventtrigger`) or alone (`eventtrigger-client`).
    for distribution in ("eventtrigger", "eventtrigger-client"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return "0.0.0"  # a source tree that was never installed


__version__ = _version()
