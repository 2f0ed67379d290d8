"""The variable registry (config.VARIABLES), the warning for unknown EVENTTRIGGER_*
variables, and OTEL_EXPORTER_OTLP_ENDPOINT.

Every call passes `environ` explicitly and `env_file=None` (or a tmp_path file), so the
developer's own environment and `.env` never leak in.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import eventtrigger_client
from eventtrigger.config import (
    DEFAULTS,
    VARIABLES,
    _Reader,
    closest_variable,
    load_settings,
    unknown_variable_warnings,
)

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bEVENTTRIGGER_[A-Z0-9_]*[A-Z0-9]\b")


def test_a_misspelt_setting_warns_naming_the_one_meant() -> None:
    assert unknown_variable_warnings(["EVENTTRIGGER_WORKER_CONCURRENCY_PER_HOST"]) == (
        "EVENTTRIGGER_WORKER_CONCURRENCY_PER_HOST is not a setting eventtrigger knows; "
        "did you mean EVENTTRIGGER_WORKER_PER_HOST?",
    )


@pytest.mark.parametrize(
    ("unknown", "meant"),
    [
        ("EVENTTRIGGER_DATABSE_URL", "EVENTTRIGGER_DATABASE_URL"),
        ("EVENTTRIGGER_SECRET_KEYS", "EVENTTRIGGER_SECRET_KEY"),
        ("EVENTTRIGGER_APIKEYS", "EVENTTRIGGER_API_KEYS"),
        ("EVENTTRIGGER_LOG_LEVL", "EVENTTRIGGER_LOG_LEVEL"),
        ("EVENTTRIGGER_KAFKA_BOOTSTRAPS", "EVENTTRIGGER_KAFKA_BOOTSTRAP"),
        ("EVENTTRIGGER_WORKERS_PER_HOST", "EVENTTRIGGER_WORKER_PER_HOST"),
        ("EVENTTRIGGER_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ],
)
def test_closest_known_variable(unknown: str, meant: str) -> None:
    assert closest_variable(unknown, VARIABLES) == meant


def test_a_name_like_nothing_known_still_warns() -> None:
    assert unknown_variable_warnings(["EVENTTRIGGER_FOO"]) == (
        "EVENTTRIGGER_FOO is not a setting eventtrigger knows; it is ignored",
    )


@pytest.mark.parametrize(
    "name",
    [
        "EVENTTRIGGER_URL",  # the command-line client's
        "EVENTTRIGGER_API_KEY",
        "EVENTTRIGGER_PROFILE",
        "EVENTTRIGGER_TEST_DATABASE",  # the test suite's
        "EVENTTRIGGER_TEST_ANYTHING_ELSE",
        "EVENTTRIGGER_CHAOS",
        "EVENTTRIGGER_BIND",  # the compose files'
        "EVENTTRIGGER_BACKUP_KEEP_DAYS",
        "EVENTTRIGGER_HTTP_PORT",  # a setting
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "EVENTTRIGGERX",  # not the prefix
        "PATH",
    ],
)
def test_known_and_foreign_variables_do_not_warn(name: str) -> None:
    assert unknown_variable_warnings([name]) == ()


def test_warnings_are_sorted_and_given_once() -> None:
    names = ["EVENTTRIGGER_ZZZ_QQQ", "EVENTTRIGGER_LOG_LEVL", "EVENTTRIGGER_LOG_LEVL"]
    assert [w.split()[0] for w in unknown_variable_warnings(names)] == [
        "EVENTTRIGGER_LOG_LEVL",
        "EVENTTRIGGER_ZZZ_QQQ",
    ]


def test_settings_carry_the_warnings_of_the_environment_and_the_env_file(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EVENTTRIGGER_RETENTION_TOTL=96h\n")
    settings = load_settings(
        {"EVENTTRIGGER_WORKER_CONCURRENCY_PER_HOST": "8", "EVENTTRIGGER_URL": "http://x"},
        env_file=env_file,
    )
    assert settings.warnings == (
        "EVENTTRIGGER_RETENTION_TOTL is not a setting eventtrigger knows; "
        "did you mean EVENTTRIGGER_RETENTION_TOTAL?",
        "EVENTTRIGGER_WORKER_CONCURRENCY_PER_HOST is not a setting eventtrigger knows; "
        "did you mean EVENTTRIGGER_WORKER_PER_HOST?",
    )
    # Ignored, not applied: the defaults stand.
    assert settings.worker_per_host == int(DEFAULTS["WORKER_PER_HOST"])


def test_no_warnings_without_unknown_variables() -> None:
    assert load_settings({"EVENTTRIGGER_HTTP_PORT": "9090"}, env_file=None).warnings == ()


# -- OTEL_EXPORTER_OTLP_ENDPOINT ---------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "   "}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " http://127.0.0.1:4318 "}, "http://127.0.0.1:4318"),
    ],
)
def test_otel_endpoint(environ: dict[str, str], expected: str | None) -> None:
    assert load_settings(environ, env_file=None).otel_endpoint == expected


def test_otel_endpoint_from_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318\n")
    assert load_settings({}, env_file=env_file).otel_endpoint == "http://collector:4318"


# -- the registry -------------------------------------------------------------------------


def test_the_reader_reads_exactly_the_registered_settings() -> None:
    reader = _Reader({})
    reader.settings()
    settings = {v.name for v in VARIABLES.values() if v.kind == "setting"}
    assert reader.read == settings


def test_every_default_is_registered_with_its_value() -> None:
    for key, default in DEFAULTS.items():
        variable = VARIABLES[f"EVENTTRIGGER_{key}"]
        assert (variable.kind, variable.default) == ("setting", default)


def test_every_variable_has_a_meaning_and_a_group() -> None:
    for name, variable in VARIABLES.items():
        assert variable.name == name
        assert variable.meaning.strip() and variable.group.strip(), name


@pytest.mark.parametrize("variable", ["EVENTTRIGGER_NOT_A_SETTING", "EVENTTRIGGER_URL"])
def test_the_reader_refuses_a_variable_not_registered_as_a_setting(variable: str) -> None:
    with pytest.raises(LookupError, match=variable):
        _Reader({variable: "x"})._raw(variable)


def _named_in(paths: list[Path]) -> set[str]:
    return {name for path in paths for name in NAME.findall(path.read_text(encoding="utf-8"))}


def test_every_variable_the_deployment_files_use_is_registered() -> None:
    """The compose files (and the `.env` beside them), the example settings and the
    container scripts use only variables the registry knows, so none of them warns."""
    files = [
        ROOT / "compose.yaml",
        ROOT / "compose.prod.yaml",
        ROOT / "config" / "example.env",
        *sorted((ROOT / "docker").rglob("*.sh")),
        *sorted((ROOT / "scripts").glob("*.sh")),
    ]
    unknown = {
        name
        for name in _named_in([f for f in files if f.is_file()])
        if name not in VARIABLES and not name.startswith("EVENTTRIGGER_TEST_")
    }
    assert not unknown, f"add to config.VARIABLES: {sorted(unknown)}"


def test_every_variable_the_client_names_is_registered() -> None:
    """Each `"EVENTTRIGGER_..."` string constant of the client package (the names it
    reads) is in the registry; its own ones as client variables."""
    names = {
        node.value
        for path in sorted(Path(eventtrigger_client.__file__).parent.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and NAME.fullmatch(node.value)
    }
    assert {"EVENTTRIGGER_URL", "EVENTTRIGGER_API_KEY"} <= names
    assert sorted(n for n in names if n not in VARIABLES) == []
    for name in ("EVENTTRIGGER_URL", "EVENTTRIGGER_API_KEY", "EVENTTRIGGER_PROFILE"):
        assert VARIABLES[name].kind == "client"
