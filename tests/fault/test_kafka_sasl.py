"""A managed-style Kafka: TLS with our own CA, SCRAM-SHA-512 users, no topic auto-creation.

The test starts its own KRaft broker (tests/fault/conftest.py's Kafka, with a `SASL_SSL`
listener instead of PLAINTEXT): a CA and a broker certificate made with `openssl`, a PEM
keystore and truststore, SCRAM users added when the storage is formatted, and
`auto.create.topics.enable=false`. Against it `eventtrigger run --roles=all`, configured
with SASL_SSL + SCRAM-SHA-512 + the CA, fires a webhook and delivers it, reads the job
topic's partition count from the broker, and reports Kafka ok in /health. A topic that
is missing with EVENTTRIGGER_KAFKA_CREATE_TOPICS=never, a wrong password, and a CA that did
not sign the broker's certificate each stop the start with an error saying so, within
seconds, instead of the minute of retries a broker that is still starting gets.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, log_lines, wait_until
from tests.fault.conftest import Kafka, MariaDB, client, fault_environ
from tests.process import EventtriggerProcess, free_port

pytestmark = pytest.mark.fault

APP_USER, APP_PASSWORD = "eventtrigger-app", "app-" + secrets.token_hex(8)
BROKER_USER, BROKER_PASSWORD = "broker", "broker-" + secrets.token_hex(8)
START_LIMIT = 30.0  # seconds a refused start may take before the process must have exited


def _openssl(base: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=base, check=True, capture_output=True)


def make_certificates(base: Path) -> None:
    """A CA, and a broker certificate it signs for 127.0.0.1 (clients check the name)."""
    _openssl(base, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=eventtrigger test CA", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    _openssl(base, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "broker.key", "-out", "broker.csr")  # fmt: skip
    (base / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(base, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "broker.crt")  # fmt: skip
    # A PEM keystore file: the (PKCS#8, unencrypted) key, then the certificate chain.
    (base / "broker-keystore.pem").write_text(
        (base / "broker.key").read_text() + (base / "broker.crt").read_text()
    )


class SaslKafka(Kafka):
    """The conftest broker with one SASL_SSL listener and SCRAM-SHA-512 users."""

    def install(self) -> None:
        make_certificates(self.base)
        self.props.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}\n"
            f"listeners=SASL_SSL://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}\n"
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=SASL_SSL\n"
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT\n"
            "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n"
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_USER}" password="{BROKER_PASSWORD}";\n'
            "ssl.keystore.type=PEM\n"
            f"ssl.keystore.location={self.base / 'broker-keystore.pem'}\n"
            "ssl.truststore.type=PEM\n"
            f"ssl.truststore.location={self.base / 'ca.pem'}\n"
            f"log.dirs={self.base / 'data'}\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "offsets.topic.num.partitions=1\n"
            "transaction.state.log.num.partitions=1\n"
            "group.initial.rebalance.delay.ms=0\n"
            "num.partitions=1\n"
            "auto.create.topics.enable=false\n"
            "num.network.threads=2\n"
            "num.io.threads=2\n"
        )
        (self.base / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.out.type = Console\n"
            "appender.out.name = out\n"
            "appender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = warn\n"
            "rootLogger.appenderRef.out.ref = out\n"
        )
        # The users' SCRAM credentials live in the metadata log: written when the storage
        # is formatted, as a managed cluster has its users before any client connects.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        with (self.base / "format.log").open("wb") as log:
            subprocess.run(
                [
                    *self._java_cmd("256m"),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(self.props),
                    "--add-scram",
                    f"SCRAM-SHA-512=[name={BROKER_USER},password={BROKER_PASSWORD}]",
                    "--add-scram",
                    f"SCRAM-SHA-512=[name={APP_USER},password={APP_PASSWORD}]",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def environ(self, **overrides: str) -> dict[str, str]:
        """The client settings for this broker, as the app user."""
        env = {
            "EVENTTRIGGER_KAFKA_BOOTSTRAP": self.bootstrap,
            "EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "EVENTTRIGGER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "EVENTTRIGGER_KAFKA_SASL_USERNAME": APP_USER,
            "EVENTTRIGGER_KAFKA_SASL_PASSWORD": APP_PASSWORD,
            "EVENTTRIGGER_KAFKA_SSL_CAFILE": str(self.base / "ca.pem"),
        }
        env.update(overrides)
        return env

    def admin(self) -> AIOKafkaAdminClient:
        """An admin client as the app user, built here rather than by the code under test."""
        return AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_SSL",
            ssl_context=create_ssl_context(cafile=self.base / "ca.pem"),
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=APP_USER,
            sasl_plain_password=APP_PASSWORD,
            request_timeout_ms=10000,
        )

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until an authenticated admin request is answered."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited:\n{self.log.read_text()[-3000:]}")
            admin = self.admin()
            try:
                await admin.start()
                await admin.describe_cluster()
                return
            except (KafkaError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"broker not ready:\n{self.log.read_text()[-3000:]}"
                    ) from None
                await asyncio.sleep(0.5)
            finally:
                await admin.close()

    async def create_topics(self, partitions: int, *names: str) -> None:
        admin = self.admin()
        await admin.start()
        try:
            response = await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
            assert all(e["error_code"] == 0 for e in response.to_object()["topic_errors"])
        finally:
            await admin.close()


@pytest.fixture(scope="module")
async def sasl_kafka() -> AsyncIterator[SaslKafka]:
    base = Path(tempfile.mkdtemp(prefix="etsasl-"))
    kafka = SaslKafka(base)
    why = kafka.missing() or (None if shutil.which("openssl") else "no openssl")
    if why:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"the SASL_SSL broker test starts its own broker: {why}")
    try:
        await asyncio.to_thread(kafka.install)
        kafka.start()
        await kafka.wait_ready()
        yield kafka
    finally:
        kafka.stop()
        shutil.rmtree(base, ignore_errors=True)


def environ(servers: tuple[MariaDB, Kafka], kafka: SaslKafka, **overrides: str) -> dict[str, str]:
    """A platform process on the fault MariaDB and the SASL_SSL broker, private topic."""
    return {**fault_environ(servers), **kafka.environ(), **overrides}


def run_until_exit(env: dict[str, str], log: Path) -> tuple[int, str, float]:
    """`eventtrigger run --roles=all` that is expected to stop by itself: its status, its
    output and how long it took (killed, and the test failed, past START_LIMIT)."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eventtrigger.cli", "run", "--roles=all"],
            env={**os.environ, **env, "EVENTTRIGGER_HTTP_HOST": "127.0.0.1",
                 "EVENTTRIGGER_HTTP_PORT": str(free_port())},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            status = proc.wait(START_LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"still running after {START_LIMIT}s:\n{log.read_text()[-3000:]}")
    return status, log.read_text(), time.monotonic() - started


async def test_fires_and_delivers_through_a_sasl_ssl_broker(
    servers: tuple[MariaDB, Kafka],
    sasl_kafka: SaslKafka,
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
) -> None:
    env = environ(servers, sasl_kafka, EVENTTRIGGER_KAFKA_CREATE_TOPICS="never")
    topic = env["EVENTTRIGGER_KAFKA_TOPIC"]
    # 3 partitions, not the 4 of EVENTTRIGGER_KAFKA_PARTITIONS: the count comes from the broker.
    await sasl_kafka.create_topics(3, topic, f"{topic}.dlq")
    proc = flaunch(env=env)

    async with client(proc) as api:
        trigger = await create_trigger(
            api, "webhook", {"endpoint": fsink.url("/sasl"), "schema": {"type": "object"}}
        )
        async with httpx.AsyncClient(timeout=10) as anonymous:
            fired = await anonymous.post(trigger["webhook_url"], json={"through": "sasl_ssl"})
        assert fired.status_code == 202, fired.text
    [delivered] = await fsink.wait_for("/sasl", 1, timeout=30)
    assert b"sasl_ssl" in delivered.body

    async def healthy() -> dict[str, object] | None:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
            answer = await anonymous.get("/health")
        return answer.json() if answer.status_code == 200 else None

    body = await wait_until(healthy, timeout=20, interval=0.3)
    assert body["checks"]["kafka"]["status"] == "ok"
    ready = [line for line in log_lines(proc.log_path) if line.get("action") == "topics_ready"]
    assert ready and ready[0]["partitions"] == {topic: 3, f"{topic}.dlq": 3}, ready
    assert APP_PASSWORD not in proc.log_path.read_text()


async def test_a_missing_topic_with_create_never_stops_the_start(
    servers: tuple[MariaDB, Kafka], sasl_kafka: SaslKafka, fdb: Database, tmp_path: Path
) -> None:
    env = environ(servers, sasl_kafka, EVENTTRIGGER_KAFKA_CREATE_TOPICS="never")
    topic = env["EVENTTRIGGER_KAFKA_TOPIC"]
    await sasl_kafka.create_topics(1, topic)  # the dead-letter topic is missing
    status, output, took = await asyncio.to_thread(run_until_exit, env, tmp_path / "run.log")
    assert status != 0
    assert f"{topic}.dlq" in output and "EVENTTRIGGER_KAFKA_CREATE_TOPICS=never" in output
    assert took < START_LIMIT


async def test_a_wrong_password_is_a_clear_start_up_error(
    servers: tuple[MariaDB, Kafka], sasl_kafka: SaslKafka, fdb: Database, tmp_path: Path
) -> None:
    env = environ(servers, sasl_kafka, EVENTTRIGGER_KAFKA_SASL_PASSWORD="not-the-password")
    status, output, took = await asyncio.to_thread(run_until_exit, env, tmp_path / "run.log")
    assert status == 1
    assert "authentication failed" in output.lower(), output[-3000:]
    # One line that says what is wrong, not a traceback.
    assert "eventtrigger: Kafka: " in output and "Traceback" not in output, output[-3000:]
    assert "not-the-password" not in output
    assert took < START_LIMIT


async def test_a_broker_certificate_from_another_ca_is_a_clear_start_up_error(
    servers: tuple[MariaDB, Kafka], sasl_kafka: SaslKafka, fdb: Database, tmp_path: Path
) -> None:
    _openssl(tmp_path, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=another CA", "-keyout", "other.key", "-out", "other.pem")  # fmt: skip
    env = environ(servers, sasl_kafka, EVENTTRIGGER_KAFKA_SSL_CAFILE=str(tmp_path / "other.pem"))
    status, output, took = await asyncio.to_thread(run_until_exit, env, tmp_path / "run.log")
    assert status != 0
    assert "certificate verify failed" in output, output[-3000:]
    assert "EVENTTRIGGER_KAFKA_SSL_CAFILE" in output
    assert took < START_LIMIT
