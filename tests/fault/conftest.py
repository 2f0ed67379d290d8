"""Fault-test fixtures: a MariaDB server and a Kafka broker of our own, which the tests may
stop, kill and restart, plus the `eventtrigger` processes and sinks that run against them.

Other engineers' tests use the shared servers on 3306/9092 (and CI may find a broker
another checkout started), so a test here never touches those: it starts `mariadbd`
(fresh `--datadir`, port and socket under a temp dir) and a one-node KRaft broker (the
jars `scripts/services.sh` fetched into `.local/kafka/libs`, its own ports and log dir)
once per session, and stops, kills or restarts only those, by the PIDs it got from
Popen. Without the binaries or jars the tests are skipped, and say why.

Long runs (20 s outages at 1,000/s and the like) carry the `chaos` marker and run only
with EVENTTRIGGER_CHAOS=1 (`make chaos`); the short version of each runs in `make test`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from eventtrigger.config import Settings, load_settings
from eventtrigger.store.db import Database
from eventtrigger.store.migrate import migrate
from tests.conftest import TABLES, TEST_API_KEY
from tests.e2e.conftest import Sink, create_trigger, rfc3339
from tests.process import EventtriggerProcess, free_port

ROOT = Path(__file__).parents[2]
KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"
KAFKA_VERSION = "4.4.0"
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
FAULT_DATABASE = "eventtrigger_fault"
CHAOS = os.environ.get("EVENTTRIGGER_CHAOS") == "1"
RESULTS: list[dict[str, Any]] = []  # numbers the chaos runner writes to bench/results/


async def one_shots_during(
    api: httpx.AsyncClient, endpoint: str, start: datetime, seconds: float, count: int
) -> set[str]:
    """Create `count` one-shot triggers to `endpoint`, due evenly between 1 s after `start`
    and 1 s before `start + seconds` (an outage's window); their ids. The caller checks
    that creating them ended before `start`."""
    ids = set()
    for i in range(count):
        due = start + timedelta(seconds=1 + (seconds - 2) * i / count)
        created = await create_trigger(
            api,
            "time_scheduled",
            {"endpoint": endpoint, "run_at": rfc3339(due), "payload": {"i": i}},
            name=f"once {i}",
        )
        ids.add(created["id"])
    return ids


def rss_mib(pid: int) -> float:
    """A process's resident memory now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: long fault run; only with EVENTTRIGGER_CHAOS=1")
    config.addinivalue_line("markers", "fault: stops or kills services of its own")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pyproject's pytest config is shared: the chaos gate lives here instead of in addopts.
    skip = pytest.mark.skip(reason="long fault run: set EVENTTRIGGER_CHAOS=1 (make chaos)")
    for item in items:
        if "chaos" in item.keywords and not CHAOS:
            item.add_marker(skip)


def record_result(**numbers: Any) -> None:
    """Keep a scenario's numbers for the results file, and show them in -s output."""
    RESULTS.append(numbers)
    print("\nRESULT", numbers)
    out = os.environ.get("EVENTTRIGGER_CHAOS_RESULTS")
    if out:  # the chaos runner reads these back (one JSON object a line)
        import orjson

        with open(out, "ab") as f:
            f.write(orjson.dumps(numbers, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def _java() -> str | None:
    """A Java >= 17 (Kafka 4.x needs it), preferring Debian's 17 as services.sh does."""
    for candidate in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*/bin/java")):
        return str(candidate)
    return shutil.which("java")


def _wait_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class MariaDB:
    """A `mariadbd` of our own: fresh datadir, own port and socket, root without password."""

    def __init__(self, base: Path) -> None:
        self.mariadbd = _which("mariadbd")
        self.install_db = _which("mariadb-install-db")
        self.base = base
        self.datadir = base / "data"
        self.port = free_port()
        self.log = base / "mariadbd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def missing(self) -> str | None:
        if not self.mariadbd or not self.install_db:
            return "mariadbd / mariadb-install-db not found (apt-get install mariadb-server)"
        return None

    def install(self) -> None:
        assert self.install_db is not None
        subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--user={os.environ.get('USER') or 'root'}",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "install-db.log").open("wb"),
        )

    def start(self) -> None:
        """Start on the same datadir and port (a restart after `stop` is a real one)."""
        assert self.mariadbd is not None
        self.proc = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--user={os.environ.get('USER') or 'root'}",
                f"--datadir={self.datadir}",
                f"--socket={self.base / 'd.sock'}",
                f"--pid-file={self.base / 'd.pid'}",
                f"--log-error={self.log}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--skip-name-resolve",
                "--max-connections=300",
                "--innodb-buffer-pool-size=128M",
                "--innodb-flush-log-at-trx-commit=2",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to pytest must not reach it first
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        import asyncmy

        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = await asyncmy.connect(host="127.0.0.1", port=self.port, user="root")
                conn.close()
                return
            except Exception:  # any failure means "not yet"
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): clients get 'connection refused' until `start`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            _wait_process(self.proc, 60)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{FAULT_DATABASE}"


class Kafka:
    """A one-node KRaft broker+controller of our own, from the jars services.sh fetched."""

    def __init__(self, base: Path) -> None:
        self.java = _java()
        self.base = base
        self.port = free_port()
        self.controller_port = free_port()
        self.props = base / "server.properties"
        self.log = base / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def missing(self) -> str | None:
        if not (KAFKA_LIBS / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            return f"no Kafka {KAFKA_VERSION} jars in {KAFKA_LIBS} (run `make services` once)"
        if not self.java:
            return "no java (Kafka 4.x needs Java >= 17)"
        return None

    def _java_cmd(self, heap: str) -> list[str]:
        assert self.java is not None
        return [
            self.java,
            f"-Xmx{heap}",
            "-XX:+UseSerialGC",  # one GC thread: the machine is shared and small
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.base / 'log4j2.properties'}",
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dkafka.logs.dir={self.base}",
            "-cp",
            f"{KAFKA_LIBS}/*",
        ]

    def install(self) -> None:
        self.props.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
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
            "auto.create.topics.enable=true\n"
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
        # A KRaft cluster id is a UUID in URL-safe base64 without padding (what
        # `StorageTool random-uuid` prints): made here to save a JVM start.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        subprocess.run(
            [
                *self._java_cmd("256m"),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.props),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "format.log").open("wb"),
        )

    def start(self) -> None:
        """Start on the same log dir and ports (a restart after `stop` keeps every topic)."""
        self.proc = subprocess.Popen(
            [*self._java_cmd("384m"), "-Xms128m", "kafka.Kafka", str(self.props)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until a produce is acknowledged: the broker is up, not just listening."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited:\n{self.log.read_text()[-3000:]}")
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                await producer.start()
                await producer.send_and_wait("fault.ready", b"ping")
                return
            except (KafkaError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
            finally:
                await producer.stop()

    def stop(self) -> None:
        """A real stop (SIGTERM: controlled shutdown), as an operator's restart does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            _wait_process(self.proc, 60)


@pytest.fixture(scope="session")
async def servers() -> AsyncIterator[tuple[MariaDB, Kafka]]:
    """Our own MariaDB and Kafka for the whole session (started in parallel)."""
    # Under /tmp, not pytest's tmp_path: a unix socket path must stay under 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="etfault-"))
    (base / "db").mkdir()
    (base / "kafka").mkdir()
    mariadb, kafka = MariaDB(base / "db"), Kafka(base / "kafka")
    for why in (mariadb.missing(), kafka.missing()):
        if why:
            shutil.rmtree(base, ignore_errors=True)
            pytest.skip(f"fault tests start their own servers: {why}")
    try:
        await asyncio.gather(asyncio.to_thread(mariadb.install), asyncio.to_thread(kafka.install))
        mariadb.start()
        kafka.start()
        await asyncio.gather(mariadb.wait_ready(), kafka.wait_ready())
        yield mariadb, kafka
    finally:
        for server in (kafka, mariadb):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def fault_environ(servers: tuple[MariaDB, Kafka], **overrides: str) -> dict[str, str]:
    """Settings for a platform process on our servers, with a private topic and group."""
    mariadb, kafka = servers
    suffix = secrets.token_hex(4)
    env = {
        "EVENTTRIGGER_DATABASE_URL": mariadb.url,
        "EVENTTRIGGER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "EVENTTRIGGER_KAFKA_TOPIC": f"fault.{suffix}",
        "EVENTTRIGGER_KAFKA_GROUP": f"fault-{suffix}",
        "EVENTTRIGGER_KAFKA_PARTITIONS": "4",
        "EVENTTRIGGER_API_KEYS": TEST_API_KEY,
        "EVENTTRIGGER_LOG_LEVEL": "INFO",
        "EVENTTRIGGER_EGRESS_ALLOW_CIDRS": "127.0.0.0/8",
        "EVENTTRIGGER_RECOVERY_AFTER": "2s",
        "EVENTTRIGGER_SHUTDOWN_GRACE": "10s",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
async def fault_settings(servers: tuple[MariaDB, Kafka]) -> Settings:
    settings = load_settings(environ=fault_environ(servers), env_file=None)
    await migrate(settings.database)
    return settings


@pytest.fixture
async def fdb(fault_settings: Settings, servers: tuple[MariaDB, Kafka]) -> AsyncIterator[Database]:
    """A pool on our own, emptied database (recreated if a test left the server down)."""
    mariadb, _ = servers
    if mariadb.proc is None or mariadb.proc.poll() is not None:
        mariadb.start()
        await mariadb.wait_ready()
    database = Database(fault_settings.database)
    await database.connect()
    async with database.connection() as tx:
        for table in TABLES:
            await tx.execute(f"DELETE FROM {table}")
    yield database
    await database.close()


@pytest.fixture
def flaunch(
    servers: tuple[MariaDB, Kafka], fdb: Database, tmp_path: Path
) -> Iterator[Callable[..., EventtriggerProcess]]:
    """Start `eventtrigger run` processes on our servers; SIGTERM'd after the test.

    `flaunch(roles="all", env=None, **overrides)`; pass one `env` to several calls to run
    several processes on one topic and group.
    """
    started: list[EventtriggerProcess] = []

    def _launch(
        roles: str = "all", env: dict[str, str] | None = None, **overrides: str
    ) -> EventtriggerProcess:
        environ = dict(env or fault_environ(servers))
        environ.update(overrides)
        proc = EventtriggerProcess(environ, roles, tmp_path / f"eventtrigger-{len(started)}.log")
        proc.start(timeout=60)
        started.append(proc)
        return proc

    yield _launch
    for proc in started:
        proc.stop()


@pytest.fixture
async def fsink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


def client(proc: EventtriggerProcess, timeout: float = 30.0) -> httpx.AsyncClient:
    """An API client for `proc` with the test key; generous pool for load generation."""
    return httpx.AsyncClient(
        base_url=proc.base_url,
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]
