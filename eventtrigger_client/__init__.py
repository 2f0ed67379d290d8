"""The `eventtrigger` command-line client: triggers, events, stats, keys, audit, login.

It talks to a running API over HTTP only, so it needs no database or Kafka settings and
starts fast; it ships inside the server's distribution and alone as `eventtrigger-client`
(clients/python), and so never imports the server package `eventtrigger`. `api` makes the
requests (and reads server-sent events through `sse`); `profiles` finds the URL and key
(flags, environment, ~/.config/eventtrigger/config.toml, the api's bootstrap key file);
`commands` builds the command tree from `cmd_triggers`, `cmd_events` and `cmd_admin`
(request bodies from flags in `definition`, `--wait` in `waiting`, shared helpers in
`common`); `render` draws tables, `output` prints json/yaml/ids; `completion` writes shell
completion scripts; `main` is the client-only entry point.
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
