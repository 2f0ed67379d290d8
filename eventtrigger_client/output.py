"""Output formats (`--output table|json|yaml|ids`) and reading `-f` documents (JSON or YAML).

`emit` prints one command's answer in the format asked for: the table and the ids come
from the caller (only it knows the columns and which field is the id), json and yaml are
the API's value unchanged. PyYAML is imported only when YAML is written or read, so
`table` and `json` output do not pay for the import.

YAML documents are read with the safe loader, except that unquoted dates and times stay
strings: `run_at: 2026-12-01T10:00:00Z` must reach the API as the text it is, not as a
Python datetime that JSON cannot carry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from eventtrigger_client import render

if TYPE_CHECKING:
    import yaml

FORMATS = ("table", "json", "yaml", "ids")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def emit(
    fmt: str,
    value: Any,
    out: TextIO,
    *,
    table: Callable[[], str],
    ids: Callable[[], Iterable[str]],
) -> None:
    """Print `value` to `out` as `fmt` (one of FORMATS); `table` and `ids` are called only
    when that format is asked for."""
    if fmt == "table":
        # Tables show what receivers and users wrote: nothing in it may drive the terminal.
        print(render.printable(table(), lines=True), file=out)
    elif fmt == "json":
        print(json.dumps(value, indent=2, ensure_ascii=False), file=out)
    elif fmt == "yaml":
        out.write(dump_yaml(value))
    elif fmt == "ids":
        for one in ids():
            print(render.printable(one), file=out)
    else:
        raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def dump_yaml(value: Any) -> str:
    """`value` as a YAML document, keys in the API's order, non-ASCII text as is."""
    import yaml

    class Dumper(yaml.SafeDumper):
        # JSON values have no shared parts worth an anchor; `&id001` would only confuse.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(value, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def load_document(text: str, name: str) -> Any:
    """The JSON or YAML document in `text` (read from the file `name`; `-` is stdin).

    Raises ValueError naming the file and the line of the first problem.
    """
    shown = "stdin" if name == "-" else name
    try:
        return json.loads(text)  # most -f files are JSON: no YAML import for them
    except ValueError:
        pass
    import yaml

    try:
        value = yaml.load(text, Loader=_loader())  # a SafeLoader, see _loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        raise ValueError(f"{shown} is not valid JSON or YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{shown} is not valid JSON or YAML: {exc}") from None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        # An explicit tag such as !!binary or !!set, or .nan: nothing JSON can send.
        raise ValueError(f"{shown} holds a value JSON cannot carry: {exc}") from None
    return value


def _loader() -> type[yaml.SafeLoader]:
    """The safe loader without implicit timestamps (they stay strings, see the docstring)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader
