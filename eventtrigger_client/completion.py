"""`eventtrigger completion bash|zsh|fish`: shell completion scripts made from the parser.

The script is generated from the argparse tree once, when the user installs it, and
holds every command, subcommand, option and option choice as plain shell code: pressing
Tab runs no Python, so completion is instant. Re-run the command after an upgrade to
pick up new commands.

`tree` reads the parser into plain data (the one place that looks at argparse's
internals); `bash`, `zsh` and `fish` turn that data into a script. All three complete
the same way: walk the words before the cursor to find the command path (skipping
options and the values of those that take one), then offer the path's subcommands, its
options (after a `-`), or the choices of the option whose value is being typed.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

SHELLS = ("bash", "zsh", "fish")
NAME = "eventtrigger"

INSTALL_HELP = """\
Print a completion script for your shell (commands, subcommands, options and their
choices); it runs no Python when you press Tab. Install it once, open a new shell, and
again after an upgrade:

  bash  eventtrigger completion bash > ~/.local/share/bash-completion/completions/eventtrigger
        (needs the bash-completion package; or add to ~/.bashrc:
         source <(eventtrigger completion bash))
  zsh   mkdir -p ~/.zfunc && eventtrigger completion zsh > ~/.zfunc/_eventtrigger
        and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)
        (any directory of $fpath works: the file must be named _eventtrigger)
  fish  eventtrigger completion fish > ~/.config/fish/completions/eventtrigger.fish"""


@dataclass(frozen=True)
class Option:
    """One option of one parser: its spellings, whether it takes a value, its choices."""

    strings: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]
    help: str


@dataclass
class Node:
    """One parser of the tree: `eventtrigger`, `eventtrigger triggers`, ..."""

    commands: list[tuple[str, str]] = field(default_factory=list)  # (name, help)
    options: list[Option] = field(default_factory=list)
    values: list[str] = field(default_factory=list)  # choices of positional arguments


Tree = dict[str, Node]  # keyed by the command path: "", "triggers", "triggers list"


def tree(parser: argparse.ArgumentParser) -> Tree:
    """Every parser reachable from `parser`, by command path."""
    nodes: Tree = {}
    _walk(parser, "", nodes)
    return nodes


def _walk(parser: argparse.ArgumentParser, path: str, nodes: Tree) -> None:
    node = nodes[path] = Node()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: _short(_help(formatter, a)) for a in action._choices_actions}
            for name, child in action.choices.items():
                node.commands.append((name, helps.get(name, "")))
                _walk(child, f"{path} {name}".strip(), nodes)
        elif action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            node.options.append(
                Option(
                    strings=tuple(action.option_strings),
                    takes_value=action.nargs != 0,
                    choices=tuple(str(c) for c in action.choices or ()),
                    help=_short(_help(formatter, action)),
                )
            )
        elif action.choices:
            node.values.extend(str(c) for c in action.choices)


def _help(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    if not action.help:
        return ""
    try:
        # Expands %(default)s and friends as --help would.
        return str(formatter._expand_help(action))
    except (KeyError, TypeError, ValueError):
        return action.help


def _short(text: str) -> str:
    """The help's first line, at most 80 characters: a menu entry, not the manual."""
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:79].rstrip() + "…"


def _valued(nodes: Tree) -> list[tuple[str, str, tuple[str, ...]]]:
    """(path, option string, choices) for every option that takes a value."""
    return [
        (path, string, option.choices)
        for path, node in nodes.items()
        for option in node.options
        if option.takes_value
        for string in option.strings
    ]


def _lookups(
    commands: str, values: str, options: str, valued: str, choices: str, otherwise: str
) -> str:
    """The lookup functions bash and zsh scripts share: subcommands, positional values and
    options by command path; whether an option takes a value; its choices. `otherwise`
    ends each `case` (zsh clears `reply` there; bash needs nothing)."""
    return f"""
_{NAME}_commands() {{
    case $1 in
{commands}{otherwise}
    esac
}}

_{NAME}_values() {{
    case $1 in
{values}{otherwise}
    esac
}}

_{NAME}_options() {{
    case $1 in
{options}{otherwise}
    esac
}}

_{NAME}_valued() {{
    case "$1|$2" in
        {valued}) return 0 ;;
    esac
    return 1
}}

_{NAME}_choices() {{
    case "$1|$2" in
{choices}{otherwise}
    esac
}}"""


# ---- bash -------------------------------------------------------------------------------


def bash(nodes: Tree) -> str:
    """A bash script defining `_eventtrigger` and registering it with `complete`."""
    q = shlex.quote

    def cases(pairs: list[tuple[str, str]], indent: str = "        ") -> str:
        return "\n".join(f"{indent}{label}) {body} ;;" for label, body in pairs)

    commands = [
        (q(path), f"echo {q(' '.join(n for n, _ in node.commands))}")
        for path, node in nodes.items()
        if node.commands
    ]
    values = [
        (q(path), f"echo {q(' '.join(node.values))}") for path, node in nodes.items() if node.values
    ]
    options = [
        (q(path), f"echo {q(' '.join(s for o in node.options for s in o.strings))}")
        for path, node in nodes.items()
        if node.options
    ]
    valued = _valued(nodes)
    valued_labels = "|".join(q(f"{path}|{string}") for path, string, _ in valued) or "''"
    choices = [(q(f"{path}|{string}"), f"echo {q(' '.join(c))}") for path, string, c in valued if c]
    lookups = _lookups(
        cases(commands), cases(values), cases(options), valued_labels, cases(choices), ""
    )
    return f"""\
# bash completion for {NAME} (generated by `{NAME} completion bash`; no Python runs on Tab)
{lookups}

_{NAME}() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmdpath="" opt="" word c i skip=0
    COMPREPLY=()
    # The command path so far; options and their values are stepped over.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if ((skip)); then
            # `--output=json` arrives as three words: --output, =, json.
            [[ $word == = ]] || skip=0
            continue
        fi
        case $word in
            --*=*) ;;
            -*) if _{NAME}_valued "$cmdpath" "$word"; then skip=1; opt=$word; fi ;;
            *)
                for c in $(_{NAME}_commands "$cmdpath"); do
                    if [[ $c == "$word" ]]; then
                        cmdpath=${{cmdpath:+$cmdpath }}$word
                        break
                    fi
                done
                ;;
        esac
    done
    [[ $cur == = ]] && cur=""
    if ((skip)); then
        local choices
        choices=$(_{NAME}_choices "$cmdpath" "$opt")
        if [[ -n $choices ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
        else
            compopt -o default 2>/dev/null  # a file, a URL, an id: leave it to readline
        fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_{NAME}_options "$cmdpath")" -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -W "$(_{NAME}_commands "$cmdpath") \
$(_{NAME}_values "$cmdpath")" -- "$cur")
    fi
    return 0
}}

complete -F _{NAME} {NAME}
"""


# ---- zsh --------------------------------------------------------------------------------


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _described(name: str, text: str) -> str:
    # _describe splits "name:description" at the first unescaped colon.
    return _zsh_quote(name.replace(":", "\\:") + (":" + text if text else ""))


def zsh(nodes: Tree) -> str:
    """A zsh script for $fpath (named `_eventtrigger`) or for `source`."""
    zq = _zsh_quote

    def cases(pairs: list[tuple[str, str]]) -> str:
        return "\n".join(f"        {label}) reply=({body}) ;;" for label, body in pairs)

    commands = [
        (zq(path), " ".join(_described(n, h) for n, h in node.commands))
        for path, node in nodes.items()
        if node.commands
    ]
    values = [
        (zq(path), " ".join(zq(v) for v in node.values))
        for path, node in nodes.items()
        if node.values
    ]
    options = [
        (zq(path), " ".join(_described(s, o.help) for o in node.options for s in o.strings))
        for path, node in nodes.items()
        if node.options
    ]
    valued = _valued(nodes)
    valued_labels = "|".join(zq(f"{path}|{string}") for path, string, _ in valued) or "''"
    choices = [
        (zq(f"{path}|{string}"), " ".join(zq(x) for x in c)) for path, string, c in valued if c
    ]
    lookups = _lookups(
        cases(commands),
        cases(values),
        cases(options),
        valued_labels,
        cases(choices),
        "\n        *) reply=() ;;",
    )
    return f"""\
#compdef {NAME}
# zsh completion for {NAME} (generated by `{NAME} completion zsh`; no Python runs on Tab)
{lookups}

_{NAME}() {{
    local cmdpath="" opt="" word cur=${{words[CURRENT]}}
    local -i i skip=0
    local -a reply names described
    # The command path so far; options and their values are stepped over.
    for ((i = 2; i < CURRENT; i++)); do
        word=${{words[i]}}
        if ((skip)); then
            skip=0
            continue
        fi
        case $word in
            --*=*) ;;
            -*) if _{NAME}_valued "$cmdpath" "$word"; then skip=1; opt=$word; fi ;;
            *)
                _{NAME}_commands "$cmdpath"
                names=(${{reply%%:*}})
                if ((${{names[(Ie)$word]}})); then
                    cmdpath=${{cmdpath:+$cmdpath }}$word
                fi
                ;;
        esac
    done
    if ((skip)); then
        _{NAME}_choices "$cmdpath" "$opt"
        if ((${{#reply}})); then compadd -a reply; else _files; fi
        return
    fi
    if [[ $cur == --*=* ]]; then
        _{NAME}_choices "$cmdpath" "${{cur%%=*}}"
        compset -P '*='
        if ((${{#reply}})); then compadd -a reply; else _files; fi
        return
    fi
    if [[ $cur == -* ]]; then
        _{NAME}_options "$cmdpath"
        described=("${{reply[@]}}")
        _describe -t options option described
    else
        _{NAME}_commands "$cmdpath"
        described=("${{reply[@]}}")
        ((${{#described}})) && _describe -t commands command described
        _{NAME}_values "$cmdpath"
        ((${{#reply}})) && compadd -a reply
    fi
    return 0
}}

# Autoloaded from $fpath, this file is the body of _{NAME}: run it. Sourced: register it.
if [[ ${{funcstack[1]-}} == _{NAME} ]]; then
    _{NAME} "$@"
else
    compdef _{NAME} {NAME}
fi
"""


# ---- fish -------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(nodes: Tree) -> str:
    """A fish script for ~/.config/fish/completions/eventtrigger.fish."""
    fq = _fish_quote
    command_cases = "\n".join(
        f"        case {fq(path)}\n            printf '%s\\n' "
        + " ".join(fq(n) for n, _ in node.commands)
        for path, node in nodes.items()
        if node.commands
    )
    valued = _valued(nodes)
    valued_labels = " ".join(fq(f"{path}|{string}") for path, string, _ in valued) or "''"
    lines: list[str] = []
    for path, node in nodes.items():
        at = f"-n {fq(f'__{NAME}_at {fq(path)}')}"
        for name, text in node.commands:
            lines.append(f"complete -c {NAME} {at} -a {fq(name)} -d {fq(text)}")
        for value in node.values:
            lines.append(f"complete -c {NAME} {at} -a {fq(value)}")
        for option in node.options:
            spelled = " ".join(_fish_flag(s) for s in option.strings)
            if option.choices:
                spelled += f" -x -a {fq(' '.join(option.choices))}"
            elif option.takes_value:
                spelled += " -r -F"
            lines.append(f"complete -c {NAME} {at} {spelled} -d {fq(option.help)}")
    completions = "\n".join(lines)
    return f"""\
# fish completion for {NAME} (generated by `{NAME} completion fish`; no Python runs on Tab)

function __{NAME}_commands --argument-names cmdpath
    switch $cmdpath
{command_cases}
    end
end

function __{NAME}_valued --argument-names cmdpath opt
    switch "$cmdpath|$opt"
        case {valued_labels}
            return 0
    end
    return 1
end

# The command path so far; options and their values are stepped over.
function __{NAME}_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmdpath
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '--*=*'
            case '-*'
                if __{NAME}_valued "$cmdpath" $word
                    set skip 1
                end
            case '*'
                if contains -- $word (__{NAME}_commands "$cmdpath")
                    set -a cmdpath $word
                end
        end
    end
    echo "$cmdpath"
end

function __{NAME}_at --argument-names wanted
    set -l here (__{NAME}_path)
    test "$here" = "$wanted"
end

complete -c {NAME} -f
{completions}
"""


def _fish_flag(string: str) -> str:
    if string.startswith("--"):
        return f"-l {string[2:]}"
    if len(string) == 2:
        return f"-s {string[1:]}"
    return f"-o {string[1:]}"  # an old-style long option: -name


GENERATORS: Mapping[str, Callable[[Tree], str]] = {"bash": bash, "zsh": zsh, "fish": fish}


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for `shell` (one of SHELLS) of the tree under `parser`."""
    return GENERATORS[shell](tree(parser))


# ---- the command ------------------------------------------------------------------------


def add_completion_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `eventtrigger completion bash|zsh|fish`. It takes no connection options (`common`
    is accepted for symmetry with the other commands) and needs no API client."""
    parser = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description=INSTALL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    parser.set_defaults(action=_completion, needs_client=False)


def _completion(args: argparse.Namespace, client: Any, out: TextIO) -> int:
    """Print the script; the tree is `args._root_parser` when the dispatcher set it."""
    root: argparse.ArgumentParser | None = getattr(args, "_root_parser", None)
    if root is None:
        from eventtrigger_client import commands  # here: commands imports this module

        root = commands.root_parser()
    out.write(script(args.shell, root))
    return 0
