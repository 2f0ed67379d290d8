"""The client-only entry point hands over to the server's when both are installed.

Both distributions install a script named `eventtrigger`; whichever was installed last
owns it. With the server package importable, the client's entry must still run server
commands, so `eventtrigger run` never disappears from a server environment.
"""

from __future__ import annotations

import pytest

import eventtrigger.cli
from eventtrigger_client import main


def test_with_the_server_installed_the_client_entry_is_the_servers() -> None:
    assert main._server_main() is eventtrigger.cli.main


def test_a_server_command_runs_through_the_client_entry(capsys: pytest.CaptureFixture[str]) -> None:
    # `migrate --help` is parsed by the server's parser (the client's has no `migrate`).
    with pytest.raises(SystemExit) as done:
        main.main(["migrate", "--help"])
    assert done.value.code == 0
    assert "usage: eventtrigger migrate" in capsys.readouterr().out


def test_without_the_server_a_server_command_is_refused_with_where_it_lives(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main, "_server_main", lambda: None)
    assert main.main(["migrate"]) == main.USAGE
    assert "is a server command" in capsys.readouterr().err
