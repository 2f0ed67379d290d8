"""Put the repository's eventtrigger_client package into this distribution's builds.

The code has one home, `eventtrigger_client/` at the repository's root (the server
distribution ships it too); this project only packages it. Built from the repository
the package is taken from two levels up; built from this project's sdist (which carries
a copy) it is taken from beside this file. Only source files go in, never caches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "eventtrigger_client"


class ClientPackageHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        here = Path(self.root).resolve()
        source = here.parent.parent / PACKAGE
        if not (source / "__init__.py").is_file():
            source = here / PACKAGE  # an unpacked sdist
        if not (source / "__init__.py").is_file():
            raise RuntimeError(f"no {PACKAGE} package two levels above {here} or beside it")
        for path in sorted(source.rglob("*")):
            if (
                path.is_file()
                and path.suffix in (".py", ".typed")
                and "__pycache__" not in path.parts
            ):
                build_data["force_include"][str(path)] = f"{PACKAGE}/{path.relative_to(source)}"
