"""The package as users get it: a wheel installed (not editable) into a fresh venv carries
its SQL migrations, so `eventtrigger migrate` builds every table on an empty database.

Before the migrations moved into the package, such an install found no SQL and answered
"up to date" on an empty database; this test is the guard.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from eventtrigger.config import Settings
from tests.conftest import test_environ as environ_for_tests
from tests.integration.test_migrate import _drop, _tables

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A fresh venv holding only the built wheel; dependencies come from this interpreter's
    site-packages through a .pth line, so the test needs no network. Paths added by a .pth
    are searched after the venv's own site-packages and their .pth files are not run, so a
    developer's editable install cannot shadow the wheel."""
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", wheels, ROOT, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("eventtrigger-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
        .strip()
        .splitlines()[-1]
    )
    (purelib / "deps.pth").write_text(
        "\n".join({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}) + "\n"
    )
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", purelib, wheel,
         cwd=tmp_path)  # fmt: skip
    where = _run(python, "-c", "import eventtrigger; print(eventtrigger.__file__)", cwd=tmp_path)
    assert str(purelib) in where, f"the wheel is not what gets imported: {where}"
    return env_dir


@pytest.mark.integration
async def test_wheel_install_migrates_an_empty_database(
    installed: Path, settings: Settings, tmp_path: Path
) -> None:
    scratch = dataclasses.replace(settings.database, database=settings.database.database + "_wheel")
    await _drop(scratch)
    try:
        url = urlsplit(environ_for_tests()["EVENTTRIGGER_DATABASE_URL"])
        env = {
            **os.environ,
            "EVENTTRIGGER_DATABASE_URL": urlunsplit(url._replace(path=f"/{scratch.database}")),
        }
        out = _run(installed / "bin" / "python", "-m", "eventtrigger.cli", "migrate",
                   cwd=tmp_path, env=env)  # fmt: skip
        assert "up to date" not in out.lower(), out
        assert {"triggers", "trigger_schedules", "event_logs", "event_logs_archive",
                "idempotency_keys", "schema_migrations"} <= await _tables(scratch)  # fmt: skip
    finally:
        await _drop(scratch)
