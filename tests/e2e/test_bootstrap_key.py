"""The bootstrap API key with the real program: with EVENTTRIGGER_API_KEYS empty and
EVENTTRIGGER_BOOTSTRAP_KEY_FILE set, the first api start makes a key, logs it once and
accepts it; later starts reuse it silently; `eventtrigger keys show-bootstrap` prints it;
with EVENTTRIGGER_API_KEYS set the file is neither read nor made."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import e2e_environ, log_lines
from tests.process import EventtriggerProcess

GENERATED = "bootstrap_key_generated"


def _bootstrap_environ(key_file: Path) -> dict[str, str]:
    return e2e_environ(EVENTTRIGGER_API_KEYS="", EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file))


async def _status(proc: EventtriggerProcess, key: str) -> int:
    """What a real API call answers with `key`."""
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as client:
        answer = await client.get("/api/v1/triggers", headers={"Authorization": f"Bearer {key}"})
    return answer.status_code


def _generated_lines(proc: EventtriggerProcess) -> list[dict[str, Any]]:
    return [line for line in log_lines(proc.log_path) if line.get("action") == GENERATED]


async def _program(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m eventtrigger.cli ARGV` with `env` over this environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventtrigger.cli", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


async def test_first_start_makes_and_logs_a_key_later_starts_reuse_it_quietly(
    launch: Callable[..., EventtriggerProcess], tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "bootstrap-key"
    key_file.parent.mkdir()
    env = _bootstrap_environ(key_file)

    first = launch(roles="api", env=env)
    key = key_file.read_text().strip()
    assert key.startswith("etk_")
    assert len(key) >= 40
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert await _status(first, key) == 200
    assert await _status(first, "etk_not-the-key") == 401
    assert first.stop() == 0
    # Logged once, at WARNING, with the key and how to see it again.
    [line] = _generated_lines(first)
    assert line["level"] == "WARNING"
    assert key in line["msg"]
    assert "docker compose exec api eventtrigger keys show-bootstrap" in line["msg"]
    # Nothing else in the directory: the temporary file is gone.
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["bootstrap-key"]

    second = launch(roles="api", env=env)
    assert await _status(second, key) == 200
    assert second.stop() == 0
    assert key_file.read_text().strip() == key
    assert _generated_lines(second) == []
    assert key not in second.log_path.read_text()

    shown = await _program("keys", "show-bootstrap", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == key + "\n"


async def test_show_bootstrap_explains_when_there_is_no_key_to_show(tmp_path: Path) -> None:
    key_file = tmp_path / "bootstrap-key"
    not_yet = await _program("keys", "show-bootstrap", env=_bootstrap_environ(key_file))
    assert not_yet.returncode == 1
    assert not_yet.stdout == ""
    assert "no key generated yet: start the api first" in not_yet.stderr

    unset = await _program(
        "keys",
        "show-bootstrap",
        env=e2e_environ(EVENTTRIGGER_API_KEYS="", EVENTTRIGGER_BOOTSTRAP_KEY_FILE=""),
    )
    assert unset.returncode == 1
    assert unset.stdout == ""
    assert "EVENTTRIGGER_BOOTSTRAP_KEY_FILE is not set" in unset.stderr

    key_file.write_text("etk_some-key-that-is-not-used\n")
    configured = await _program(
        "keys",
        "show-bootstrap",
        env=e2e_environ(EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file)),  # keys set too
    )
    assert configured.returncode == 1
    assert configured.stdout == ""
    assert "the API keys are the ones" in configured.stderr
    assert "EVENTTRIGGER_API_KEYS" in configured.stderr


async def test_configured_keys_leave_the_key_file_alone(
    launch: Callable[..., EventtriggerProcess], tmp_path: Path
) -> None:
    missing = tmp_path / "missing" / "bootstrap-key"
    missing.parent.mkdir()
    present = tmp_path / "present-key"
    present.write_text("etk_written-by-someone-else-0123456789\n")
    before = present.stat()

    for key_file in (missing, present):
        proc = launch(roles="api", env=e2e_environ(EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file)))
        assert await _status(proc, TEST_API_KEY) == 200
        # Not read: the file's key is no key here.
        assert await _status(proc, "etk_written-by-someone-else-0123456789") == 401
        assert proc.stop() == 0
        assert _generated_lines(proc) == []

    assert not missing.exists()
    assert list(missing.parent.iterdir()) == []  # no temporary file either
    after = present.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert present.read_text() == "etk_written-by-someone-else-0123456789\n"


async def test_an_unwritable_key_directory_stops_the_start_naming_the_path(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "no-such-directory" / "bootstrap-key"
    done = await _program("run", "--roles=api", env=_bootstrap_environ(key_file))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "EVENTTRIGGER_BOOTSTRAP_KEY_FILE" in done.stderr
    assert f"cannot create {key_file}" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_corrupt_key_file_stops_the_start_naming_the_path(tmp_path: Path) -> None:
    key_file = tmp_path / "bootstrap-key"
    key_file.write_text("\n  \n")
    done = await _program("run", "--roles=api", env=_bootstrap_environ(key_file))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{key_file} is empty" in done.stderr
    assert key_file.read_text() == "\n  \n"  # not replaced behind the operator's back
