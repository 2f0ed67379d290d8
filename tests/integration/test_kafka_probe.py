"""The Kafka health check keeps one admin connection: repeated checks do not open a new
connection to the cluster each time, and a failed check drops its client so the next one
starts afresh. And the topics at start-up (prepare_topics), on the shared broker: the
partition count comes from the broker, missing topics are created or (never) refused, and
a creation the broker refuses is an error naming the topic."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from eventtrigger.bus import KafkaProbe, KafkaSetupError, prepare_topics
from eventtrigger.config import Settings, load_settings
from tests import conftest


class CountingProxy:
    """A TCP relay to the broker that counts the connections made through it.

    Only bootstrap connections pass here (the broker advertises its own address for the
    rest), so the count is the number of clients that started."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def stop(self) -> None:
        for task in list(self._pipes):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.close()


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[tuple[Settings, CountingProxy]]:
    proxy = CountingProxy(settings.kafka_bootstrap[0])
    bootstrap = await proxy.start()
    yield (
        load_settings(
            environ=conftest.test_environ(EVENTTRIGGER_KAFKA_BOOTSTRAP=bootstrap), env_file=None
        ),
        proxy,
    )
    await proxy.stop()


async def test_repeated_checks_share_one_connection(
    proxied: tuple[Settings, CountingProxy],
) -> None:
    settings, proxy = proxied
    probe = KafkaProbe(settings)
    try:
        for _ in range(5):
            assert await probe.ping() > 0
    finally:
        await probe.close()
    # One client for five checks (a client per check made five bootstrap connections).
    assert proxy.connections == 1


async def test_a_failed_check_drops_its_client_and_the_next_starts_afresh(
    settings: Settings,
) -> None:
    made: list[AIOKafkaAdminClient] = []
    target = ["127.0.0.1:1"]  # nothing listens on port 1: the first check fails

    def make() -> AIOKafkaAdminClient:
        made.append(AIOKafkaAdminClient(bootstrap_servers=target[0], request_timeout_ms=2000))
        return made[-1]

    probe = KafkaProbe(settings, make_admin=make)
    with pytest.raises(KafkaError):
        await probe.ping()
    target[0] = settings.kafka_bootstrap[0]
    try:
        await probe.ping()
        await probe.ping()
    finally:
        await probe.close()
    assert len(made) == 2  # rebuilt once after the failure, then kept


# The topics at start-up: created or required, and their partition count from the broker.


@pytest.fixture
async def topics() -> AsyncIterator[Callable[..., Settings]]:
    """Settings on a fresh topic name (`**env` overrides); the topics are deleted after."""
    names: list[str] = []

    def make(**env: str) -> Settings:
        names.append(f"kafkaopt.{secrets.token_hex(4)}")
        environ = conftest.test_environ(EVENTTRIGGER_KAFKA_TOPIC=names[-1])
        environ.update({f"EVENTTRIGGER_{k}": v for k, v in env.items()})
        return load_settings(environ=environ, env_file=None)

    yield make
    admin = AIOKafkaAdminClient(
        bootstrap_servers=conftest.test_environ()["EVENTTRIGGER_KAFKA_BOOTSTRAP"]
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for n in names for t in (n, f"{n}.dlq") if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def create(settings: Settings, partitions: int, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def existing_topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_the_partition_count_is_read_from_the_broker(
    topics: Callable[..., Settings],
) -> None:
    s = topics(KAFKA_PARTITIONS="6")
    await create(s, 2, s.kafka_topic, s.dlq_topic)
    assert await prepare_topics(s) == 2  # what the topic has, not EVENTTRIGGER_KAFKA_PARTITIONS


async def test_auto_creates_the_missing_topics_with_the_configured_count(
    topics: Callable[..., Settings],
) -> None:
    s = topics(KAFKA_PARTITIONS="3", KAFKA_CREATE_TOPICS="auto")
    await create(s, 2, s.kafka_topic)  # only the dead-letter topic is missing
    assert await prepare_topics(s) == 2
    assert {s.kafka_topic, s.dlq_topic} <= await existing_topics(s)
    fresh = topics(KAFKA_PARTITIONS="3")
    assert await prepare_topics(fresh) == 3


async def test_never_with_a_missing_topic_is_a_setup_error_and_creates_nothing(
    topics: Callable[..., Settings],
) -> None:
    s = topics(KAFKA_CREATE_TOPICS="never")
    await create(s, 1, s.kafka_topic)
    with pytest.raises(KafkaSetupError) as info:
        await prepare_topics(s)
    assert s.dlq_topic in str(info.value)
    assert "EVENTTRIGGER_KAFKA_CREATE_TOPICS=never" in str(info.value)
    # Not created behind our back either (the shared broker auto-creates on metadata requests).
    assert s.dlq_topic not in await existing_topics(s)


async def test_a_refused_creation_names_the_topic_and_the_broker_error(
    topics: Callable[..., Settings],
) -> None:
    s = topics(KAFKA_REPLICATION="3")  # one broker here: the controller refuses
    with pytest.raises(KafkaSetupError) as info:
        await prepare_topics(s)
    assert s.kafka_topic in str(info.value)
    assert "INVALID_REPLICATION_FACTOR" in str(info.value)
    assert s.kafka_topic not in await existing_topics(s)


async def test_topics_created_meanwhile_by_another_process_are_fine(
    topics: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = topics(KAFKA_PARTITIONS="3")
    await create(s, 2, s.kafka_topic, s.dlq_topic)

    async def nothing_yet(self: AIOKafkaAdminClient) -> list[str]:
        return []  # as listed just before another process created both

    monkeypatch.setattr(AIOKafkaAdminClient, "list_topics", nothing_yet)
    assert await prepare_topics(s) == 2  # TOPIC_ALREADY_EXISTS is no refusal
