"""client_options: every Kafka client (producer, consumer, admin, health probe) connects
with the same brokers, TLS and SASL; and topic_refusals, which reads a CreateTopics
response that aiokafka does not raise errors from.

No broker here: the clients are built, not started (tests/fault/test_kafka_sasl.py runs
them against a SASL_SSL broker).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from eventtrigger.bus import KafkaProbe, Publisher, client_options, job_consumer, topic_refusals
from eventtrigger.config import Settings, load_settings

PASSWORD = "Kafka-Pass-0192"


def settings(**env: str) -> Settings:
    return load_settings({f"EVENTTRIGGER_{k}": v for k, v in env.items()}, env_file=None)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a client certificate and key it signed (PEM files)."""
    if not shutil.which("openssl"):
        pytest.skip("needs openssl to make certificates")
    base = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=base, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=options test CA", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client",
            "-keyout", "client.key", "-out", "client.csr")  # fmt: skip
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "client.crt")  # fmt: skip
    return base


def sasl_ssl(pki: Path, **more: str) -> Settings:
    return settings(
        KAFKA_BOOTSTRAP="k1.example:9093,k2.example:9093",
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="app",
        KAFKA_SASL_PASSWORD=PASSWORD,
        KAFKA_SSL_CAFILE=str(pki / "ca.pem"),
        **more,
    )


def test_plaintext_options_are_the_brokers_only() -> None:
    assert client_options(settings(KAFKA_BOOTSTRAP="k1:9092,k2:9092")) == {
        "bootstrap_servers": ["k1:9092", "k2:9092"],
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_options_carry_the_credentials_and_a_verifying_tls_context(pki: Path) -> None:
    options = client_options(sasl_ssl(pki))
    assert options["bootstrap_servers"] == ["k1.example:9093", "k2.example:9093"]
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "app"
    assert options["sasl_plain_password"] == PASSWORD  # the value, not the masked Secret
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    [ca] = context.get_ca_certs()  # our CA only, not the system's
    assert "options test CA" in str(ca["subject"])


def test_sasl_plaintext_has_no_tls_context() -> None:
    options = client_options(
        settings(
            KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
            KAFKA_SASL_MECHANISM="PLAIN",
            KAFKA_SASL_USERNAME="app",
            KAFKA_SASL_PASSWORD=PASSWORD,
        )
    )
    assert "ssl_context" not in options
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "PLAIN")


def test_ssl_without_a_ca_file_trusts_the_system_cas() -> None:
    options = client_options(settings(KAFKA_SECURITY_PROTOCOL="SSL"))
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "sasl_mechanism" not in options


def test_a_client_certificate_is_loaded_into_the_context(pki: Path) -> None:
    s = settings(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(pki / "ca.pem"),
        KAFKA_SSL_CERTFILE=str(pki / "client.crt"),
        KAFKA_SSL_KEYFILE=str(pki / "client.key"),
    )
    assert isinstance(client_options(s)["ssl_context"], ssl.SSLContext)
    # A key that does not match the certificate is refused when the context is built.
    wrong = settings(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CERTFILE=str(pki / "client.crt"),
        KAFKA_SSL_KEYFILE=str(pki / "ca.key"),
    )
    with pytest.raises(ssl.SSLError):
        client_options(wrong)


def _client_security(client: Any) -> tuple[Any, ...]:
    """What an aiokafka client (its inner AIOKafkaClient) will connect with."""
    return (
        client._bootstrap_servers,
        client._security_protocol,
        client._sasl_mechanism,
        client._sasl_plain_username,
        client._sasl_plain_password,
        client._ssl_context is not None,
    )


EXPECTED = (
    ["k1.example:9093", "k2.example:9093"],
    "SASL_SSL",
    "SCRAM-SHA-512",
    "app",
    PASSWORD,
    True,
)


async def test_every_client_connects_with_the_options(pki: Path) -> None:
    s = sasl_ssl(pki)
    publisher = Publisher(s)
    consumer = job_consumer(s)
    probe_admin = KafkaProbe(s)._make()
    try:
        assert _client_security(publisher._producer.client) == EXPECTED
        assert _client_security(consumer._client) == EXPECTED
        assert _client_security(probe_admin._client) == EXPECTED
    finally:
        await probe_admin.close()
        await consumer.stop()
        await publisher.stop()


async def test_the_consumer_session_timeout_is_the_setting() -> None:
    consumer = job_consumer(settings(KAFKA_SESSION_TIMEOUT="45s"))
    try:
        assert consumer._session_timeout_ms == 45_000
        assert consumer._heartbeat_interval_ms < consumer._session_timeout_ms
    finally:
        await consumer.stop()
    default = job_consumer(settings())
    try:
        assert default._session_timeout_ms == timedelta(seconds=6).total_seconds() * 1000
    finally:
        await default.stop()


@pytest.mark.parametrize(
    ("topic_errors", "refused"),
    [
        ([], {}),
        ([{"topic": "jobs", "error_code": 0, "error_message": None}], {}),
        # Created by another process in the meantime: fine.
        (
            [{"topic": "jobs", "error_code": 36, "error_message": "Topic 'jobs' already exists."}],
            {},
        ),
        (
            [
                {"topic": "jobs", "error_code": 0, "error_message": None},
                {"topic": "jobs.dlq", "error_code": 44, "error_message": "retention too long"},
            ],
            {"jobs.dlq": "POLICY_VIOLATION (44): retention too long"},
        ),
        (
            [
                {
                    "topic": "jobs",
                    "error_code": 38,
                    "error_message": "Replication factor: 3 larger than available brokers: 1.",
                }
            ],
            {
                "jobs": "INVALID_REPLICATION_FACTOR (38): Replication factor: 3 larger than available brokers: 1."
            },
        ),
        # CreateTopics v0 has no message: the error's own description stands in.
        ([{"topic": "jobs", "error_code": 29}], {"jobs": "TOPIC_AUTHORIZATION_FAILED (29): "}),
    ],
)
def test_topic_refusals(topic_errors: list[dict[str, Any]], refused: dict[str, str]) -> None:
    found = topic_refusals(topic_errors)
    assert found.keys() == refused.keys()
    for topic, why in refused.items():
        assert found[topic].startswith(why)
