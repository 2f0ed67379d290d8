"""`eventtrigger` as the client-only distribution (`eventtrigger-client`) installs it.

The same client commands as the server package's `eventtrigger`, without the server: the
commands that run roles or touch the database and Kafka directly (`migrate`, `run`,
`echo`, `healthcheck`, `rotate-secret-key`, `keys show-bootstrap`) are refused with a
word on where they live, rather than an argparse "invalid choice".

Both distributions install a script named `eventtrigger` (the contract's name for the
client commands). Installed into one environment, the later install's script wins; so
when the server package is importable here, this entry hands everything to the server's
own `eventtrigger.cli.main`, and `eventtrigger run` keeps working whichever came last.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from eventtrigger_client import commands

USAGE = 2
SERVER_COMMANDS = ("migrate", "run", "echo", "healthcheck", "rotate-secret-key")
SERVER_SUBCOMMANDS = {"keys": ("show-bootstrap",)}


def server_command(argv: list[str]) -> str | None:
    """The server-only command `argv` asks for (`migrate`, `keys show-bootstrap`), if any."""
    words = [word for word in argv if not word.startswith("-")]
    if not words:
        return None
    if words[0] in SERVER_COMMANDS:
        return words[0]
    if len(words) > 1 and words[1] in SERVER_SUBCOMMANDS.get(words[0], ()):
        return f"{words[0]} {words[1]}"
    return None


def _server_main() -> Callable[[list[str] | None], int] | None:
    """The server package's entry point, when it is installed beside this client."""
    try:
        from eventtrigger.cli import main as server_main
    except ImportError:
        return None
    return server_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    server_main = _server_main()
    if server_main is not None:
        return server_main(argv)
    needed = server_command(argv)
    if needed is not None:
        print(
            f"eventtrigger: `{needed}` is a server command: it needs the eventtrigger server "
            "package (pip install eventtrigger), or run it in the api container "
            f"(docker compose exec api eventtrigger {needed}); this is the client only",
            file=sys.stderr,
        )
        return USAGE
    parser = commands.root_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_root_parser", None) is None:
        args._root_parser = parser  # for `completion`: the tree this program parses with
    code: int = commands.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
