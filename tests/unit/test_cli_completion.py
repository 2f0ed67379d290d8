"""Shell completion scripts: generated from the parser, they complete commands,
subcommands, options and option choices, in bash, zsh and fish."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from eventtrigger_client import commands, completion


def _parser() -> argparse.ArgumentParser:
    """A small tree shaped like the client's: groups, leaves, shared options, choices."""
    root = argparse.ArgumentParser(prog="eventtrigger")
    root.add_argument("--version", action="version", version="eventtrigger 0")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="API base URL")
    common.add_argument(
        "-o", "--output", choices=("table", "json", "yaml", "ids"), help="output format"
    )
    common.add_argument("--yes", action="store_true", help="do not ask: it's meant")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database (%(prog)s)")
    triggers = sub.add_parser("triggers", help="manage triggers", parents=[common])
    leaves = triggers.add_subparsers(dest="subcommand", required=True)
    listing = leaves.add_parser("list", help="list triggers", parents=[common])
    listing.add_argument("--limit", type=int, help="items per page")
    listing.add_argument("--status", choices=("active", "paused"), help="only these")
    leaves.add_parser("get", help="show one trigger", parents=[common]).add_argument("id")
    leaves.add_parser("delete", help="delete one", parents=[common]).add_argument("id")
    events = sub.add_parser("events", help="event logs", parents=[common])
    events.add_subparsers(dest="subcommand").add_parser("tail", help="follow new events")
    completion.add_completion_command(sub, common)
    return root


def _script(shell: str, parser: argparse.ArgumentParser | None = None) -> str:
    return completion.script(shell, parser or _parser())


def test_the_tree_holds_commands_options_and_choices() -> None:
    nodes = completion.tree(_parser())
    assert set(nodes) == {
        "",
        "migrate",
        "triggers",
        "triggers list",
        "triggers get",
        "triggers delete",
        "events",
        "events tail",
        "completion",
    }
    assert [name for name, _ in nodes[""].commands] == [
        "migrate",
        "triggers",
        "events",
        "completion",
    ]
    # %(prog)s expanded as the root's --help shows it.
    assert dict(nodes[""].commands)["migrate"] == "create the database (eventtrigger)"
    by_flag = {o.strings: o for o in nodes["triggers list"].options}
    assert by_flag[("-o", "--output")].choices == ("table", "json", "yaml", "ids")
    assert by_flag[("--limit",)].takes_value and not by_flag[("--yes",)].takes_value
    assert nodes["completion"].values == ["bash", "zsh", "fish"]


# ---- bash -----------------------------------------------------------------------------------


def _bash(script: str, *words: str) -> list[str]:
    """What the script offers for the command line `words` (the last is being typed)."""
    cword = len(words) - 1
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        f"source <(cat <<'EOF'\n{script}\nEOF\n)\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={cword}\n"
        '_eventtrigger; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_subcommands() -> None:
    script = _script("bash")
    assert _bash(script, "eventtrigger", "tri") == ["triggers"]
    assert _bash(script, "eventtrigger", "") == ["migrate", "triggers", "events", "completion"]
    assert _bash(script, "eventtrigger", "triggers", "") == ["list", "get", "delete"]
    assert _bash(script, "eventtrigger", "triggers", "d") == ["delete"]
    assert _bash(script, "eventtrigger", "completion", "") == ["bash", "zsh", "fish"]


def test_bash_completes_a_subcommands_options_and_their_choices() -> None:
    script = _script("bash")
    assert _bash(script, "eventtrigger", "triggers", "list", "--li") == ["--limit"]
    assert _bash(script, "eventtrigger", "triggers", "list", "--output", "") == [
        "table",
        "json",
        "yaml",
        "ids",
    ]
    assert _bash(script, "eventtrigger", "triggers", "list", "-o", "y") == ["yaml"]
    # bash splits --status=act at the `=` (COMP_WORDBREAKS).
    assert _bash(script, "eventtrigger", "triggers", "list", "--status", "=", "act") == ["active"]
    assert _bash(script, "eventtrigger", "triggers", "list", "--status", "=") == [
        "active",
        "paused",
    ]
    assert "--version" in _bash(script, "eventtrigger", "--")


def test_bash_steps_over_options_and_their_values() -> None:
    script = _script("bash")
    # `list` after an option's value is still the subcommand; a value that happens to
    # be a command's name is not taken for one.
    assert _bash(script, "eventtrigger", "triggers", "--url", "http://x", "l") == ["list"]
    assert _bash(script, "eventtrigger", "triggers", "--url", "events", "g") == ["get"]
    assert _bash(script, "eventtrigger", "triggers", "--yes", "get", "--ur") == ["--url"]
    # After a flag that takes no value, the next word is a command again.
    assert _bash(script, "eventtrigger", "triggers", "list", "--limit", "5", "--st") == ["--status"]


def test_bash_offers_nothing_made_up_for_free_values() -> None:
    script = _script("bash")
    assert _bash(script, "eventtrigger", "triggers", "list", "--limit", "") == []
    assert _bash(script, "eventtrigger", "triggers", "get", "") == []


# ---- zsh ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_is_valid_zsh(tmp_path: Path) -> None:
    path = tmp_path / "_eventtrigger"
    path.write_text(_script("zsh"))
    done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def _zsh(script: str, *words: str) -> list[str]:
    """What the zsh function offers, with the completion system's builtins stubbed to
    print their candidates (names only, descriptions cut)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        "compdef() { :; }\n"
        "_describe() { local n=${@[-1]}; print -l -- ${${(P)n}%%:*}; }\n"
        "compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }\n"
        "compset() { :; }\n_files() { print -- '<files>'; }\n"
        f"source <(cat <<'EOF'\n{script}\nEOF\n)\n"
        f"words=({quoted}); CURRENT={len(words)}\n_eventtrigger\n"
    )
    done = subprocess.run(["zsh", "-fc", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completes_commands_options_and_choices() -> None:
    script = _script("zsh")
    assert "triggers" in _zsh(script, "eventtrigger", "tri")
    assert _zsh(script, "eventtrigger", "triggers", "") == ["list", "get", "delete"]
    assert "--limit" in _zsh(script, "eventtrigger", "triggers", "list", "--")
    assert _zsh(script, "eventtrigger", "triggers", "--url", "x", "list", "--output", "") == [
        "table",
        "json",
        "yaml",
        "ids",
    ]
    assert _zsh(script, "eventtrigger", "triggers", "list", "--status=") == ["active", "paused"]
    assert _zsh(script, "eventtrigger", "triggers", "list", "--limit", "") == ["<files>"]
    assert _zsh(script, "eventtrigger", "completion", "") == ["bash", "zsh", "fish"]


def test_zsh_script_is_an_fpath_function_with_descriptions() -> None:
    script = _script("zsh")
    assert script.startswith("#compdef eventtrigger\n")
    assert "'triggers:manage triggers'" in script
    assert "'--yes:do not ask: it'\\''s meant'" in script  # a quote in a help text
    assert '_eventtrigger "$@"' in script and "compdef _eventtrigger eventtrigger" in script


# ---- fish -----------------------------------------------------------------------------------


def _fish(script: str, line: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "eventtrigger.fish"
    path.write_text(script)
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {path}; complete -C {line!r}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [entry.split("\t")[0] for entry in done.stdout.splitlines() if entry]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_options_and_choices(tmp_path: Path) -> None:
    script = _script("fish")
    assert _fish(script, "eventtrigger tri", tmp_path) == ["triggers"]
    assert sorted(_fish(script, "eventtrigger triggers ", tmp_path)) == ["delete", "get", "list"]
    assert "--limit" in _fish(script, "eventtrigger triggers list --", tmp_path)
    assert sorted(_fish(script, "eventtrigger triggers list --output ", tmp_path)) == [
        "ids",
        "json",
        "table",
        "yaml",
    ]
    assert _fish(script, "eventtrigger triggers --url events g", tmp_path) == ["get"]
    assert sorted(_fish(script, "eventtrigger completion ", tmp_path)) == ["bash", "fish", "zsh"]


def test_fish_script_declares_each_option_with_its_choices() -> None:
    script = _script("fish")
    assert (
        "complete -c eventtrigger -n '__eventtrigger_at \\'triggers list\\'' -s o -l output "
        "-x -a 'table json yaml ids' -d 'output format'"
    ) in script
    assert "-l limit -r -F -d 'items per page'" in script
    assert "-d 'do not ask: it\\'s meant'" in script


# ---- the command ----------------------------------------------------------------------------


def test_the_command_prints_the_script_of_the_root_parser_it_is_given() -> None:
    parser = _parser()
    args = parser.parse_args(["completion", "bash"])
    assert args.needs_client is False
    args._root_parser = parser
    out = io.StringIO()
    assert args.action(args, None, out) == 0
    assert out.getvalue() == _script("bash", parser)
    assert "complete -F _eventtrigger eventtrigger" in out.getvalue()


def test_the_help_says_how_to_install_each_script() -> None:
    text = completion.INSTALL_HELP
    assert "> ~/.local/share/bash-completion/completions/eventtrigger" in text
    assert "_eventtrigger" in text and "fpath" in text
    assert "> ~/.config/fish/completions/eventtrigger.fish" in text


def test_the_real_client_parser_completes_its_commands() -> None:
    root_parser = getattr(commands, "root_parser", None)
    if root_parser is None:
        pytest.fail("eventtrigger_client.commands.root_parser() is missing")
    script = _script("bash", root_parser())
    assert _bash(script, "eventtrigger", "tri") == ["triggers"]
    assert _bash(script, "eventtrigger", "triggers", "list", "--output", "y") == ["yaml"]
    assert _bash(script, "eventtrigger", "comp") == ["completion"]
