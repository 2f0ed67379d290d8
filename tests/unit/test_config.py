"""load_settings: EVENTTRIGGER_* variables (then `.env`, then defaults) into Settings.

Every call passes `environ` explicitly and `env_file=None` (or a tmp_path file), so the
developer's own environment and `.env` never leak in.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest

from eventtrigger.config import DEFAULTS, Secret, Settings, SettingsError, load_settings


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


# Kafka connection security, topic creation and the consumer's session timeout.

SASL_SSL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "app",
    "KAFKA_SASL_PASSWORD": "Kafka-Pass-0192",
}


def test_kafka_security_defaults() -> None:
    s = load_settings({}, env_file=None)
    assert s.kafka_security.protocol == "PLAINTEXT"
    assert s.kafka_security.sasl_mechanism is None
    assert s.kafka_security.sasl_username == ""
    assert str(s.kafka_security.sasl_password) == ""
    assert s.kafka_security.ssl_cafile is None
    assert s.kafka_security.ssl_certfile is None
    assert s.kafka_security.ssl_keyfile is None
    assert (s.kafka_security.sasl, s.kafka_security.ssl) == (False, False)
    assert s.kafka_create_topics == "auto"
    assert s.kafka_session_timeout == timedelta(seconds=6)


def test_every_kafka_default_is_written_once_in_defaults() -> None:
    for name, default in [
        ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        ("KAFKA_CREATE_TOPICS", "auto"),
        ("KAFKA_SESSION_TIMEOUT", "6s"),
        ("KAFKA_SASL_MECHANISM", ""),
        ("KAFKA_SASL_USERNAME", ""),
        ("KAFKA_SASL_PASSWORD", ""),
        ("KAFKA_SSL_CAFILE", ""),
        ("KAFKA_SSL_CERTFILE", ""),
        ("KAFKA_SSL_KEYFILE", ""),
    ]:
        assert DEFAULTS[name] == default


def test_sasl_ssl_with_a_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = load(
        **{
            **SASL_SSL,
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",  # either case
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SSL_CAFILE": str(ca),
        }
    )
    k = s.kafka_security
    assert k.protocol == "SASL_SSL"
    assert k.sasl_mechanism == "SCRAM-SHA-512"
    assert k.sasl_username == "app"
    assert isinstance(k.sasl_password, Secret)
    assert str(k.sasl_password) == "Kafka-Pass-0192"
    assert k.ssl_cafile == ca
    assert (k.sasl, k.ssl) == (True, True)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_mechanisms_and_protocols(protocol: str, mechanism: str) -> None:
    s = load(**{**SASL_SSL, "KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SASL_MECHANISM": mechanism})
    assert s.kafka_security.protocol == protocol
    assert s.kafka_security.sasl_mechanism == mechanism
    assert s.kafka_security.ssl is (protocol == "SASL_SSL")


def test_ssl_without_sasl_uses_the_system_cas_when_no_ca_file_is_given() -> None:
    k = load(KAFKA_SECURITY_PROTOCOL="SSL").kafka_security
    assert (k.protocol, k.ssl, k.sasl, k.ssl_cafile) == ("SSL", True, False, None)


def test_client_certificate_and_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_text("cert")
    key.write_text("key")
    k = load(
        KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERTFILE=str(cert), KAFKA_SSL_KEYFILE=str(key)
    ).kafka_security
    assert (k.ssl_certfile, k.ssl_keyfile) == (cert, key)


def test_sasl_password_is_kept_as_given_and_masked_everywhere() -> None:
    s = load(**{**SASL_SSL, "KAFKA_SASL_PASSWORD": "  spaced Kafka-Pass-0192 "})
    assert str(s.kafka_security.sasl_password) == "  spaced Kafka-Pass-0192 "
    for text in (repr(s), str(s), repr(s.kafka_security), f"{s.kafka_security}"):
        assert "Kafka-Pass-0192" not in text
        assert "**********" in text


@pytest.mark.parametrize(
    ("raw", "expected"), [("never", "never"), ("AUTO", "auto"), (" never ", "never")]
)
def test_kafka_create_topics(raw: str, expected: str) -> None:
    assert load(KAFKA_CREATE_TOPICS=raw).kafka_create_topics == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("45s", timedelta(seconds=45)), ("10", timedelta(seconds=10)), ("2m", timedelta(minutes=2))],
)
def test_kafka_session_timeout(raw: str, expected: timedelta) -> None:
    assert load(KAFKA_SESSION_TIMEOUT=raw).kafka_session_timeout == expected


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL"}, "EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "EVENTTRIGGER_KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "EVENTTRIGGER_KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": ""}, "EVENTTRIGGER_KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "KAFKA_SASL_USERNAME": ""}, "EVENTTRIGGER_KAFKA_SASL_USERNAME"),
        ({**SASL_SSL, "KAFKA_SASL_PASSWORD": ""}, "EVENTTRIGGER_KAFKA_SASL_PASSWORD"),
        (
            {**SASL_SSL, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": " "},
            "EVENTTRIGGER_KAFKA_SASL_USERNAME",
        ),
        # Credentials the protocol would ignore: the process would talk in clear.
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "EVENTTRIGGER_KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SASL_USERNAME": "app"}, "EVENTTRIGGER_KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_PASSWORD": "secret"}, "EVENTTRIGGER_KAFKA_SASL_PASSWORD"),
        (
            {**SASL_SSL, "KAFKA_SECURITY_PROTOCOL": "SSL"},
            "EVENTTRIGGER_KAFKA_SASL_MECHANISM",
        ),
        ({"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "EVENTTRIGGER_KAFKA_SSL_CAFILE"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "EVENTTRIGGER_KAFKA_SSL_CAFILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/nonexistent/c.pem"},
            "EVENTTRIGGER_KAFKA_SSL_CERTFILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/nonexistent/k.pem"},
            "EVENTTRIGGER_KAFKA_SSL_KEYFILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/"},
            "EVENTTRIGGER_KAFKA_SSL_CAFILE",
        ),
        ({"KAFKA_CREATE_TOPICS": "sometimes"}, "EVENTTRIGGER_KAFKA_CREATE_TOPICS"),
        ({"KAFKA_CREATE_TOPICS": "false"}, "EVENTTRIGGER_KAFKA_CREATE_TOPICS"),
        ({"KAFKA_SESSION_TIMEOUT": "six seconds"}, "EVENTTRIGGER_KAFKA_SESSION_TIMEOUT"),
        ({"KAFKA_SESSION_TIMEOUT": "500ms"}, "EVENTTRIGGER_KAFKA_SESSION_TIMEOUT"),
        ({"KAFKA_SESSION_TIMEOUT": "31m"}, "EVENTTRIGGER_KAFKA_SESSION_TIMEOUT"),
        ({"KAFKA_SESSION_TIMEOUT": "-6s"}, "EVENTTRIGGER_KAFKA_SESSION_TIMEOUT"),
    ],
    ids=_env_id,
)
def test_bad_kafka_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        load(**env)
    assert info.value.variable == variable
    assert variable in str(info.value)


def test_ssl_files_with_a_protocol_without_tls_name_the_variable(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("ca")
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        with pytest.raises(SettingsError) as info:
            load(**{**SASL_SSL, "KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SSL_CAFILE": str(ca)})
        assert info.value.variable == (
            "EVENTTRIGGER_KAFKA_SASL_MECHANISM"
            if protocol == "PLAINTEXT"
            else "EVENTTRIGGER_KAFKA_SSL_CAFILE"
        )
    with pytest.raises(SettingsError) as info:
        load(KAFKA_SSL_CAFILE=str(ca))
    assert info.value.variable == "EVENTTRIGGER_KAFKA_SSL_CAFILE"
    assert "EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL" in str(info.value)


def test_a_key_file_needs_a_certificate_file(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("key")
    with pytest.raises(SettingsError) as info:
        load(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_KEYFILE=str(key))
    assert info.value.variable == "EVENTTRIGGER_KAFKA_SSL_KEYFILE"


def test_a_bad_kafka_setting_is_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventtrigger.cli import main

    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("EVENTTRIGGER_API_KEYS", "some-key-0123456789")
    monkeypatch.setenv("EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    assert main(["run", "--roles=all"]) == 2
    assert "EVENTTRIGGER_KAFKA_SASL_MECHANISM" in capsys.readouterr().err
