"""The bootstrap key file on a real file system: made once, whole, mode 0600; read back;
and when api processes start at the same moment, exactly one key is written and every
one of them ends up with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from eventtrigger import bootstrap_key
from eventtrigger.bootstrap_key import BootstrapKeyError, obtain, read


def _leftovers(directory: Path, key_file: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p != key_file)


def test_obtain_makes_a_key_once_then_reads_it(tmp_path: Path) -> None:
    key_file = tmp_path / "bootstrap-key"
    assert read(key_file) is None
    key, made = obtain(key_file)
    assert made
    assert key.startswith("etk_")
    assert key_file.read_text() == key + "\n"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert _leftovers(tmp_path, key_file) == []
    assert obtain(key_file) == (key, False)
    assert read(key_file) == key


def test_an_operator_written_key_is_used_as_is(tmp_path: Path) -> None:
    key_file = tmp_path / "bootstrap-key"
    key_file.write_text("  my-own-key-0123456789abcdef \n")
    assert obtain(key_file) == ("my-own-key-0123456789abcdef", False)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        (" \n\t\n", "is empty"),
        ("two words here-0123456789", "does not hold a key"),
    ],
)
def test_an_empty_or_corrupt_file_is_an_error_naming_it(
    tmp_path: Path, content: str, problem: str
) -> None:
    key_file = tmp_path / "bootstrap-key"
    key_file.write_text(content)
    with pytest.raises(BootstrapKeyError, match=problem) as failed:
        obtain(key_file)
    assert str(key_file) in str(failed.value)
    assert failed.value.variable == "EVENTTRIGGER_BOOTSTRAP_KEY_FILE"
    assert key_file.read_text() == content


def test_binary_garbage_is_an_error_naming_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "bootstrap-key"
    key_file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BootstrapKeyError, match=f"cannot read {key_file}"):
        obtain(key_file)


@pytest.mark.parametrize("parent", ["missing", "a-file"])
def test_a_directory_that_cannot_take_the_file_is_an_error_naming_it(
    tmp_path: Path, parent: str
) -> None:
    (tmp_path / "a-file").write_text("")
    key_file = tmp_path / parent / "bootstrap-key"
    with pytest.raises(BootstrapKeyError, match=f"cannot (create|read) {re.escape(str(key_file))}"):
        obtain(key_file)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_an_error_naming_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir(mode=0o500)
    key_file = directory / "bootstrap-key"
    with pytest.raises(BootstrapKeyError, match=f"cannot create {key_file}.*writable"):
        obtain(key_file)


def test_losing_the_race_returns_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step between looking and linking: another process linked its key first."""
    key_file = tmp_path / "bootstrap-key"
    key_file.write_text("etk_the-winners-key-0123456789\n")
    real_read = bootstrap_key.read
    looks: list[Path] = []

    def read_after_the_first_look(path: Path) -> str | None:
        looks.append(path)
        # The first look happened before the winner linked its file.
        return None if len(looks) == 1 else real_read(path)

    monkeypatch.setattr(bootstrap_key, "read", read_after_the_first_look)
    assert obtain(key_file) == ("etk_the-winners-key-0123456789", False)
    assert looks == [key_file, key_file]
    assert key_file.read_text() == "etk_the-winners-key-0123456789\n"
    assert _leftovers(tmp_path, key_file) == []


def _start(together: threading.Barrier, key_file: Path, results: list[tuple[str, bool]]) -> None:
    together.wait()
    results.append(obtain(key_file))


def test_threads_starting_together_share_one_key(tmp_path: Path) -> None:
    for round_ in range(20):
        key_file = tmp_path / f"round-{round_}" / "bootstrap-key"
        key_file.parent.mkdir()
        results: list[tuple[str, bool]] = []
        together = threading.Barrier(4)
        threads = [
            threading.Thread(target=_start, args=(together, key_file, results)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 4
        assert {key for key, _ in results} == {read(key_file)}
        assert sum(made for _, made in results) == 1
        assert _leftovers(key_file.parent, key_file) == []


_STARTER = """
import pathlib, sys
from eventtrigger.bootstrap_key import obtain
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():  # all processes start obtaining at the same moment
    pass
key, made = obtain(pathlib.Path(sys.argv[1]))
print(key, made)
"""


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "shared" / "bootstrap-key"
    key_file.parent.mkdir()
    go = tmp_path / "go"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER, str(key_file), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for starter in starters:  # every one imported and waiting
        assert starter.stdout is not None
        assert starter.stdout.readline() == "ready\n"
    go.touch()
    outputs = [starter.communicate(timeout=60)[0].split() for starter in starters]
    assert all(starter.returncode == 0 for starter in starters)
    assert {key for key, _ in outputs} == {read(key_file)}
    assert [made for _, made in outputs].count("True") == 1
    assert _leftovers(key_file.parent, key_file) == []
