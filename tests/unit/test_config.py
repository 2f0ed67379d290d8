"""load_settings: EVENTTRIGGER_* variables (then `.env`, then defaults) into Settings.

Every call passes `environ` explicitly and `env_file=None` (or a tmp_path file), so the
developer's own environment and `.env` never leak in.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest

from eventtrigger.config import Secret, Settings, SettingsError, load_settings


def load(**env: str) -> Settings:
    return load_settings({f"EVENTTRIGGER_{k}": v for k, v in env.items()}, env_file=None)


def _env_id(value: object) -> str | None:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return None


def test_defaults_match_the_contract() -> None:
    s = load_settings({}, env_file=None)
    assert s.database.host == "127.0.0.1"
    assert s.database.port == 3306
    assert s.database.user == "root"
    assert str(s.database.password) == ""
    assert s.database.database == "eventtrigger"
    assert s.kafka_bootstrap == ("127.0.0.1:9092",)
    assert s.kafka_topic == "eventtrigger.jobs"
    assert s.dlq_topic == "eventtrigger.jobs.dlq"
    assert s.kafka_group == "eventtrigger-workers"
    assert s.http_host == "0.0.0.0"
    assert s.http_port == 8080
    assert s.public_url == "http://localhost:8080"
    assert s.api_keys == ()
    assert s.auth_enabled is True
    assert s.egress_allow == ()
    assert s.retention_active == timedelta(hours=2)
    assert s.retention_total == timedelta(hours=48)
    assert s.retention_interval == timedelta(seconds=30)
    assert s.log_level == "INFO"
    assert s.log_format == "json"
    assert s.max_body_bytes == 1024 * 1024


def test_database_url_is_split_into_parts() -> None:
    s = load(DATABASE_URL="mysql://bob:p%40ss%3Aw0rd@db.internal:3307/events_db")
    assert s.database.host == "db.internal"
    assert s.database.port == 3307
    assert s.database.user == "bob"
    assert str(s.database.password) == "p@ss:w0rd"
    assert s.database.database == "events_db"


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "mysql+asyncmy"])
def test_database_url_schemes_accepted(scheme: str) -> None:
    s = load(DATABASE_URL=f"{scheme}://root@127.0.0.1/eventtrigger")
    assert s.database.port == 3306  # default port when none is given
    assert s.database.database == "eventtrigger"


def test_kafka_settings() -> None:
    s = load(
        KAFKA_BOOTSTRAP="k1:9092, k2:9093 ,k3:9094",
        KAFKA_TOPIC="my.jobs_v2",
        KAFKA_GROUP="my-workers",
    )
    assert s.kafka_bootstrap == ("k1:9092", "k2:9093", "k3:9094")
    assert s.kafka_topic == "my.jobs_v2"
    assert s.dlq_topic == "my.jobs_v2.dlq"
    assert s.kafka_group == "my-workers"


def test_http_host_port_and_public_url() -> None:
    s = load(HTTP_HOST="127.0.0.1", HTTP_PORT="9000", PUBLIC_URL="https://triggers.example.com/")
    assert s.http_host == "127.0.0.1"
    assert s.http_port == 9000
    assert s.public_url == "https://triggers.example.com"  # trailing slash dropped


@pytest.mark.parametrize("port", ["1", "65535", " 8081 "])
def test_http_port_edges_accepted(port: str) -> None:
    assert load(HTTP_PORT=port).http_port == int(port)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("key-one", ("key-one",)),
        ("key-one,key-two", ("key-one", "key-two")),
        (" key-one , key-two ,, ", ("key-one", "key-two")),
        ("", ()),
        (",", ()),
    ],
)
def test_api_keys_split_on_commas(raw: str, expected: tuple[str, ...]) -> None:
    keys = load(API_KEYS=raw).api_keys
    assert all(isinstance(k, Secret) for k in keys)
    assert tuple(str(k) for k in keys) == expected


def test_api_keys_and_db_password_hidden_in_repr() -> None:
    s = load(
        API_KEYS="sk-live-ALPHA-123456,sk-live-BETA-654321",
        DATABASE_URL="mysql://app:Hunter2-db-pass@db/eventtrigger",
    )
    text = repr(s)
    assert "sk-live-ALPHA-123456" not in text
    assert "sk-live-BETA-654321" not in text
    assert "Hunter2-db-pass" not in text
    assert "**********" in text
    assert "sk-live-ALPHA-123456" not in str(s)
    # The values themselves are still there for whoever needs them.
    assert [str(k) for k in s.api_keys] == ["sk-live-ALPHA-123456", "sk-live-BETA-654321"]


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [("enabled", True), ("disabled", False), ("DISABLED", False), (" Enabled ", True)],
)
def test_auth(raw: str, enabled: bool) -> None:
    assert load(AUTH=raw).auth_enabled is enabled


def test_egress_allow_cidrs() -> None:
    s = load(EGRESS_ALLOW_CIDRS="127.0.0.0/8, 10.1.0.0/16,::1/128,192.168.1.7")
    assert s.egress_allow == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.168.1.7/32"),
    )


def test_retention_durations() -> None:
    s = load(RETENTION_ACTIVE="5s", RETENTION_TOTAL="1m", RETENTION_INTERVAL="250ms")
    assert s.retention_active == timedelta(seconds=5)
    assert s.retention_total == timedelta(minutes=1)
    assert s.retention_interval == timedelta(milliseconds=250)


def test_retention_plain_seconds() -> None:
    s = load(RETENTION_ACTIVE="10", RETENTION_TOTAL="20")
    assert s.retention_active == timedelta(seconds=10)
    assert s.retention_total == timedelta(seconds=20)


@pytest.mark.parametrize(
    ("level", "expected"), [("debug", "DEBUG"), ("WARNING", "WARNING"), ("Error", "ERROR")]
)
def test_log_level(level: str, expected: str) -> None:
    assert load(LOG_LEVEL=level).log_level == expected


@pytest.mark.parametrize(("fmt", "expected"), [("text", "text"), ("JSON", "json")])
def test_log_format(fmt: str, expected: str) -> None:
    assert load(LOG_FORMAT=fmt).log_format == expected


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HTTP_PORT": "abc"}, "EVENTTRIGGER_HTTP_PORT"),
        ({"HTTP_PORT": "0"}, "EVENTTRIGGER_HTTP_PORT"),
        ({"HTTP_PORT": "70000"}, "EVENTTRIGGER_HTTP_PORT"),
        ({"HTTP_PORT": "-1"}, "EVENTTRIGGER_HTTP_PORT"),
        ({"HTTP_PORT": "80.5"}, "EVENTTRIGGER_HTTP_PORT"),
        ({"RETENTION_ACTIVE": "two hours"}, "EVENTTRIGGER_RETENTION_ACTIVE"),
        ({"RETENTION_TOTAL": "48x"}, "EVENTTRIGGER_RETENTION_TOTAL"),
        ({"RETENTION_INTERVAL": "-5s"}, "EVENTTRIGGER_RETENTION_INTERVAL"),
        ({"RETENTION_INTERVAL": "0"}, "EVENTTRIGGER_RETENTION_INTERVAL"),
        ({"RETENTION_ACTIVE": "999999999999d"}, "EVENTTRIGGER_RETENTION_ACTIVE"),
        ({"RETENTION_ACTIVE": "2h", "RETENTION_TOTAL": "2h"}, "EVENTTRIGGER_RETENTION_TOTAL"),
        ({"RETENTION_ACTIVE": "2h", "RETENTION_TOTAL": "1h"}, "EVENTTRIGGER_RETENTION_TOTAL"),
        ({"RETENTION_ACTIVE": "3d"}, "EVENTTRIGGER_RETENTION_TOTAL"),  # above the 48h default
        ({"EGRESS_ALLOW_CIDRS": "10.0.0.0/33"}, "EVENTTRIGGER_EGRESS_ALLOW_CIDRS"),
        ({"EGRESS_ALLOW_CIDRS": "127.0.0.0/8,not-a-cidr"}, "EVENTTRIGGER_EGRESS_ALLOW_CIDRS"),
        ({"EGRESS_ALLOW_CIDRS": "300.1.1.1/32"}, "EVENTTRIGGER_EGRESS_ALLOW_CIDRS"),
        ({"DATABASE_URL": "postgres://root@127.0.0.1/eventtrigger"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "127.0.0.1:3306/eventtrigger"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1:3306"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1:3306/"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql:///eventtrigger"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1:abc/eventtrigger"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/event;drop"}, "EVENTTRIGGER_DATABASE_URL"),
        ({"LOG_FORMAT": "xml"}, "EVENTTRIGGER_LOG_FORMAT"),
        ({"LOG_LEVEL": "LOUD"}, "EVENTTRIGGER_LOG_LEVEL"),
        ({"AUTH": "off"}, "EVENTTRIGGER_AUTH"),
        ({"AUTH": "false"}, "EVENTTRIGGER_AUTH"),
        ({"KAFKA_BOOTSTRAP": "broker-without-port"}, "EVENTTRIGGER_KAFKA_BOOTSTRAP"),
        ({"KAFKA_BOOTSTRAP": "k1:9092,,k2:9092"}, "EVENTTRIGGER_KAFKA_BOOTSTRAP"),
        ({"KAFKA_TOPIC": "jobs topic"}, "EVENTTRIGGER_KAFKA_TOPIC"),
        ({"KAFKA_TOPIC": ""}, "EVENTTRIGGER_KAFKA_TOPIC"),
        ({"PUBLIC_URL": "ftp://example.com"}, "EVENTTRIGGER_PUBLIC_URL"),
    ],
    ids=_env_id,
)
def test_bad_values_raise_settings_error_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load(**env)
    assert info.value.variable == variable
    assert variable in str(info.value)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_env_file_is_read_when_environment_lacks_a_value(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# local development\n"
        "EVENTTRIGGER_HTTP_PORT=9191\n"
        'EVENTTRIGGER_API_KEYS="from-file-key"\n'
        "EVENTTRIGGER_LOG_FORMAT=text\n"
    )
    s = load_settings({}, env_file=env_file)
    assert s.http_port == 9191
    assert [str(k) for k in s.api_keys] == ["from-file-key"]
    assert s.log_format == "text"


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EVENTTRIGGER_HTTP_PORT=9191\nEVENTTRIGGER_KAFKA_TOPIC=file.topic\n")
    s = load_settings({"EVENTTRIGGER_HTTP_PORT": "7070"}, env_file=env_file)
    assert s.http_port == 7070  # from the environment
    assert s.kafka_topic == "file.topic"  # the file still fills what the env lacks


def test_bad_value_in_env_file_names_the_variable(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EVENTTRIGGER_HTTP_PORT=abc\n")
    with pytest.raises(SettingsError) as info:
        load_settings({}, env_file=env_file)
    assert info.value.variable == "EVENTTRIGGER_HTTP_PORT"


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    s = load_settings({"EVENTTRIGGER_HTTP_PORT": "7070"}, env_file=tmp_path / "nope.env")
    assert s.http_port == 7070


def test_unrelated_variables_are_ignored() -> None:
    s = load_settings({"HTTP_PORT": "abc", "PATH": "/usr/bin"}, env_file=None)
    assert s.http_port == 8080
