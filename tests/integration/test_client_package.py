"""The client as its own distribution (clients/python, `eventtrigger-client`): its wheel
holds the client package only, installs into a fresh venv that has none of the server's
dependencies, and that `eventtrigger` lists triggers of a real running API, logs in, and
finds the api's bootstrap key file.

The venv gets PyYAML (the one dependency) as a copy of this interpreter's, on a .pth
line, so pip resolves the wheel's dependencies offline: `--no-index` fails if the wheel
asked for anything else.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import yaml

from eventtrigger.config import Settings
from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.conftest import test_environ as environ_for_tests
from tests.process import EventtriggerProcess

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("eventtrigger", "starlette", "asyncmy", "aiokafka", "uvicorn", "loguru")


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _copy_pyyaml(into: Path) -> None:
    """This interpreter's PyYAML (package, C extension, metadata) into `into`."""
    dist = metadata.distribution("pyyaml")
    site = Path(str(dist.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in dist.files or []}
    for top in tops:
        source = site / top
        if source.is_dir():
            shutil.copytree(source, into / top, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, into / top)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("client-wheel")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", out, ROOT / "clients" / "python", cwd=out)  # fmt: skip
    (built,) = out.glob("eventtrigger_client-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (its own pip, so the `eventtrigger` script runs the venv's Python)
    holding the client wheel and PyYAML, nothing else."""
    base = tmp_path_factory.mktemp("client-venv")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base)
        .strip()
        .splitlines()[-1]
    )
    deps = base / "deps"
    deps.mkdir()
    _copy_pyyaml(deps)
    (purelib / "deps.pth").write_text(f"{deps}\n")
    _run(python, "-m", "pip", "install", "-q", "--no-index", "--no-cache-dir",
         "--disable-pip-version-check", wheel, cwd=base, env=_clean_env(base))  # fmt: skip
    return env_dir


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No EVENTTRIGGER_* or PYTHON* settings of the test run, a private home and config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EVENTTRIGGER_", "PYTHON", "VIRTUAL_ENV", "XDG_"))
    }
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"), TZ="UTC", **extra)
    return env


@pytest.fixture(scope="module")
def api_server(
    migrated: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventtriggerProcess]:
    log = tmp_path_factory.mktemp("client-api") / "eventtrigger.log"
    # Loopback endpoints allowed: the trigger below points at one (it never fires).
    environ = environ_for_tests(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="127.0.0.0/8")
    proc = EventtriggerProcess(environ, "api", log)
    proc.start()
    yield proc
    assert proc.stop() == 0, log.read_text()


@pytest.fixture
async def trigger(api_server: EventtriggerProcess, db: Database) -> dict[str, str]:
    """A fresh trigger (on an emptied database) for the client to list."""
    async with httpx.AsyncClient(
        base_url=api_server.base_url,
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
        timeout=10,
    ) as http:
        answer = await http.post(
            "/api/v1/triggers",
            json={
                "name": "client package check",
                "type": "webhook",
                "config": {"endpoint": "http://127.0.0.1:9/hook", "schema": {"type": "object"}},
            },
        )
    assert answer.status_code == 201, answer.text
    made: dict[str, str] = answer.json()
    return made


def _client(
    installed: Path, home: Path, *argv: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """The venv's `eventtrigger` script, run from outside the repository."""
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(installed / "bin" / "eventtrigger"), *argv],
        cwd=home,
        env=_clean_env(home, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


@pytest.mark.integration
def test_the_wheel_holds_the_client_package_and_asks_only_for_pyyaml(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = archive.read(info).decode()
        entry = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    packaged = {n for n in names if not n.startswith("eventtrigger_client-")}
    in_repo = {
        f"eventtrigger_client/{p.relative_to(ROOT / 'eventtrigger_client')}"
        for p in (ROOT / "eventtrigger_client").rglob("*")
        if p.suffix in (".py", ".typed") and "__pycache__" not in p.parts
    }
    assert packaged == in_repo  # the repository's one copy of the code, nothing else
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == ["Requires-Dist: pyyaml>=6.0.1"]
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"\nVersion: {server}\n" in meta  # released together, one version
    assert "eventtrigger = eventtrigger_client.main:main" in entry


@pytest.mark.integration
def test_the_venv_has_none_of_the_servers_dependencies(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    for module in SERVER_ONLY:
        done = subprocess.run(
            [str(python), "-c", f"import {module}"],
            cwd=tmp_path,
            env=_clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module
    code = "import yaml, eventtrigger_client.main as m; print(m.__file__)"
    where = _run(python, "-c", code, cwd=tmp_path, env=_clean_env(tmp_path))
    assert str(installed) in where  # the installed copy, not the repository's


@pytest.mark.integration
def test_version_and_the_server_commands_refused(installed: Path, tmp_path: Path) -> None:
    version = _client(installed, tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    assert "0.1.0" in version.stdout
    for argv in (["migrate"], ["run", "--roles=api"], ["keys", "show-bootstrap"]):
        refused = _client(installed, tmp_path, *argv)
        assert refused.returncode == 2
        assert "needs the eventtrigger server package" in refused.stderr, refused.stderr
    script = _client(installed, tmp_path, "completion", "bash")
    assert script.returncode == 0 and "complete -F _eventtrigger eventtrigger" in script.stdout


@pytest.mark.integration
async def test_triggers_list_against_a_real_api(
    installed: Path, api_server: EventtriggerProcess, trigger: dict[str, str], tmp_path: Path
) -> None:
    flags = ("--url", api_server.base_url, "--api-key", TEST_API_KEY)
    listed = _client(installed, tmp_path, "triggers", "list", *flags)
    assert listed.returncode == 0, listed.stderr
    rows = _table_rows(listed.stdout)
    assert rows[0][:2] == ["ID", "NAME"]
    assert any(row[0] == trigger["id"] and "client" in row for row in rows[1:]), listed.stdout
    ids = _client(installed, tmp_path, "triggers", "list", "-o", "ids", *flags)
    assert ids.stdout.split() == [trigger["id"]]
    shown = _client(installed, tmp_path, "triggers", "get", trigger["id"], "-o", "yaml", *flags)
    assert yaml.safe_load(shown.stdout)["name"] == "client package check"


@pytest.mark.integration
async def test_login_saves_a_profile_later_commands_use(
    installed: Path, api_server: EventtriggerProcess, trigger: dict[str, str], tmp_path: Path
) -> None:
    url = api_server.base_url
    config = tmp_path / "xdg" / "eventtrigger" / "config.toml"
    wrong_key = "not-the-key-0123456789\n"
    refused = _client(installed, tmp_path, "login", "--url", url, "--profile", "x", stdin=wrong_key)
    assert refused.returncode == 1, refused.stderr
    assert "refused the key" in refused.stderr and "nothing written" in refused.stderr
    assert not config.exists()

    login = ("login", "--url", url + "/api/v1/", "--profile", "it")
    done = _client(installed, tmp_path, *login, stdin=TEST_API_KEY + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"logged in to {url} as key ")
    assert done.stdout.rstrip().endswith(f"profile it saved in {config}")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = tomllib.loads(config.read_text())
    # The first profile saved becomes the default; the URL is saved without the API path.
    assert saved == {
        "default_profile": "it",
        "profiles": {"it": {"url": url, "api_key": TEST_API_KEY}},
    }
    listed = _client(installed, tmp_path, "triggers", "list", "-o", "ids")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [trigger["id"]]
    # A key on the command line still wins over the profile's.
    wrong = _client(installed, tmp_path, "triggers", "list", "--api-key", "wrong-key-0123456789")
    assert wrong.returncode == 1
    # A second profile, made the default, keeps the first.
    again = ("login", "--url", url, "--profile", "other", "--default", "--timeout", "7")
    done = _client(installed, tmp_path, *again, stdin=TEST_API_KEY + "\n")
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(config.read_text()) == {
        "default_profile": "other",
        "profiles": {
            "it": {"url": url, "api_key": TEST_API_KEY},
            "other": {"url": url, "api_key": TEST_API_KEY, "timeout": 7.0},
        },
    }


@pytest.mark.integration
async def test_the_bootstrap_key_file_goes_only_to_the_default_local_url(
    installed: Path, api_server: EventtriggerProcess, trigger: dict[str, str], tmp_path: Path
) -> None:
    # The file the api reads its generated key from: used only for the api container's
    # own address (http://localhost:8080, a unit test covers it), never sent elsewhere.
    key_file = tmp_path / "api-key"
    key_file.write_text(TEST_API_KEY + "\n")
    listed = _client(
        installed,
        tmp_path,
        "triggers",
        "list",
        EVENTTRIGGER_URL=api_server.base_url,
        EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file),
    )
    assert listed.returncode == 1 and "401" in listed.stderr
    keyed = _client(
        installed,
        tmp_path,
        "triggers",
        "list",
        EVENTTRIGGER_URL=api_server.base_url,
        EVENTTRIGGER_API_KEY=TEST_API_KEY,
    )
    assert keyed.returncode == 0, keyed.stderr
    assert trigger["id"] in keyed.stdout
