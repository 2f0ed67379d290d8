"""Kafka: how every client connects, the topics, the job publisher, the workers'
consumer, and the health check.

Kafka is the transport, not the truth: every job exists as an event row before it is
published, so a failed publish only delays it until the scheduler re-publishes it.

Every client is built from `client_options` (bootstrap servers, TLS, SASL), so a managed
cluster needs nothing more than its settings. Start-up problems that waiting cannot fix
(credentials refused, an untrusted broker certificate, a topic missing or refused) raise
KafkaSetupError, which is not a KafkaError: the runner does not retry it, the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    LeaderNotAvailableError,
    NoError,
    OutOfOrderSequenceNumber,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnknownProducerId,
    UnknownTopicOrPartitionError,
    UnsupportedSaslMechanismError,
    for_code,
)
from aiokafka.helpers import create_ssl_context
from loguru import logger

from eventtrigger import __version__
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import message_key

if TYPE_CHECKING:  # imported only when tracing is on
    from eventtrigger.observability.tracing import Tracing

PUBLISH_TIMEOUT = 10.0
# Errors after which an idempotent producer never sends again: it must be replaced.
POISON = (OutOfOrderSequenceNumber, UnknownProducerId)
BACKGROUND_BATCH = 2000  # jobs per background publish
BACKGROUND_LIMIT = 50_000  # jobs queued for the background publisher; beyond, the rows cover them
SETUP_TIMEOUT = 10.0  # seconds for a topic just created to show in the metadata
# A broker answers these while a topic it just created spreads to its metadata.
NOT_YET = (UnknownTopicOrPartitionError.errno, LeaderNotAvailableError.errno)
AUTH_ERRORS = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError)


class KafkaSetupError(RuntimeError):
    """Kafka cannot be used as configured, and waiting will not change that."""


def client_options(settings: Settings) -> dict[str, Any]:
    """The connection options every Kafka client gets: brokers, TLS and SASL."""
    security = settings.kafka_security
    options: dict[str, Any] = {
        "bootstrap_servers": list(settings.kafka_bootstrap),
        "security_protocol": security.protocol,
    }
    if security.ssl:
        # check_hostname is always on: the broker's certificate must name its address.
        options["ssl_context"] = create_ssl_context(
            cafile=security.ssl_cafile,
            certfile=security.ssl_certfile,
            keyfile=security.ssl_keyfile,
        )
    if security.sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = str(security.sasl_password)
    return options


def topic_refusals(topic_errors: Sequence[dict[str, Any]]) -> dict[str, str]:
    """From a CreateTopics response: each topic the broker refused, with its reason.

    aiokafka returns per-topic error codes without raising them. A topic that already
    exists is no refusal: another process created it in the meantime.
    """
    refused: dict[str, str] = {}
    for item in topic_errors:
        code = int(item["error_code"])
        if code in (NoError.errno, TopicAlreadyExistsError.errno):
            continue
        detail = item.get("error_message") or for_code(code).description
        refused[str(item["topic"])] = f"{for_code(code).message} ({code}): {detail}"
    return refused


class KafkaProbe:
    """The health check: a metadata round trip to the cluster on one long-lived connection.

    `/health` runs it at most once a second (Health caches), and a new admin client per
    check would open and tear down a connection every time. The client is kept while it
    works and dropped after a failure or a timeout, so the next check starts afresh
    against a restarted or moved cluster.
    """

    def __init__(
        self, settings: Settings, make_admin: Callable[[], AIOKafkaAdminClient] | None = None
    ) -> None:
        self._make = make_admin or (
            lambda: AIOKafkaAdminClient(
                **client_options(settings),
                request_timeout_ms=2000,
                client_id="eventtrigger-health",
            )
        )
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def ping(self) -> float:
        """Latency in ms; raises when the cluster cannot be reached."""
        async with self._lock:
            started = time.perf_counter()
            try:
                if self._admin is None:
                    self._admin = self._make()
                    await self._admin.start()
                await self._admin.describe_cluster()
            except BaseException:  # a timeout cancels us: drop that client as well
                await self.close()
                raise
            return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


async def ensure_topics(settings: Settings) -> None:
    """prepare_topics, for callers that need the topics but not their partition count."""
    await prepare_topics(settings)


async def prepare_topics(settings: Settings) -> int:
    """Check the job and dead-letter topics exist, creating the missing ones unless
    EVENTTRIGGER_KAFKA_CREATE_TOPICS=never; the job topic's partition count, as the broker
    has it (EVENTTRIGGER_KAFKA_PARTITIONS only sizes the topics created here).

    Raises KafkaSetupError for what retrying cannot fix, KafkaError/OSError otherwise.
    """
    try:
        return await _prepare_topics(settings)
    except KafkaSetupError as exc:
        logger.bind(action="kafka_setup_failed").error("{}", exc)
        raise


async def _prepare_topics(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="eventtrigger-admin")
    try:
        await admin.start()
    except KafkaConnectionError:
        await admin.close()
        await _explain_connection_failure(settings)
        raise
    try:
        names = (settings.kafka_topic, settings.dlq_topic)
        # All topics, not a metadata request naming ours: that would make a broker with
        # auto.create.topics.enable create them, with its own partition count.
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing and settings.kafka_create_topics == "never":
            raise KafkaSetupError(
                f"Kafka topic(s) {', '.join(missing)} missing (or not visible to this user), "
                "and EVENTTRIGGER_KAFKA_CREATE_TOPICS=never: create them, or set it to auto"
            )
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(n, settings.kafka_partitions, settings.kafka_replication)
                    for n in missing
                ]
            )
            refused = topic_refusals(response.to_object()["topic_errors"])
            if refused:
                raise KafkaSetupError(
                    "Kafka refused to create "
                    + "; ".join(f"topic {name}: {why}" for name, why in refused.items())
                )
            logger.bind(action="topics_created").info("created topics {}", missing)
        partitions = await _partition_counts(admin, names)
    finally:
        await admin.close()
    logger.bind(action="topics_ready", partitions=partitions).info(
        "Kafka topics ready: {} has {} partition(s)",
        settings.kafka_topic, partitions[settings.kafka_topic],
    )  # fmt: skip
    return partitions[settings.kafka_topic]


async def _partition_counts(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    """Each topic's partition count from the metadata, waiting briefly for new topics."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    while True:
        counts: dict[str, int] = {}
        for topic in await admin.describe_topics(list(names)):
            code = int(topic["error_code"])
            if code == NoError.errno and topic["partitions"]:
                counts[topic["topic"]] = len(topic["partitions"])
            elif code not in (NoError.errno, *NOT_YET):
                error = for_code(code)
                raise KafkaSetupError(
                    f"Kafka topic {topic['topic']}: {error.message} ({code}): {error.description}"
                )
        if len(counts) == len(names):
            return counts
        if time.monotonic() > deadline:
            raise KafkaConnectionError(f"topics {sorted(set(names) - counts.keys())} not ready")
        await asyncio.sleep(0.2)  # polling the broker: it has no notification to await


async def _explain_connection_failure(settings: Settings) -> None:
    """After a failed bootstrap, which aiokafka reports only as 'unable to bootstrap':
    one direct connection per broker to tell refused credentials and untrusted
    certificates (KafkaSetupError) from a cluster that is not up yet (returns)."""
    security = settings.kafka_security
    options = client_options(settings)
    options.pop("bootstrap_servers")
    for server in settings.kafka_bootstrap:
        host, _, port = server.rpartition(":")
        try:
            conn = await create_conn(
                host.strip("[]"), int(port), request_timeout_ms=5000, **options
            )
        except AUTH_ERRORS as exc:
            raise KafkaSetupError(
                f"Kafka authentication failed at {server} for user {security.sasl_username!r} "
                f"({security.sasl_mechanism}): {exc}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaSetupError(
                f"Kafka TLS handshake with {server} failed: certificate verify failed: "
                f"{exc.verify_message} "
                "(check EVENTTRIGGER_KAFKA_SSL_CAFILE)"
            ) from None
        except (KafkaError, OSError, TimeoutError):
            continue  # not reachable (yet): the caller's retry covers it
        conn.close()


class Publisher:
    """One idempotent producer per process (acks=all), shared by every role."""

    def __init__(self, settings: Settings, tracing: Tracing | None = None) -> None:
        self._settings = settings
        self._tracing = tracing  # a `send` span per job and a traceparent header, if on
        self._producer = self._make()
        self._renewing = asyncio.Lock()

    def _make(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self._settings),
            client_id=f"eventtrigger-{__version__}",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            # Large batches: a burst of jobs travels in a few requests, not one per 16 KiB.
            max_batch_size=512 * 1024,
            request_timeout_ms=int(PUBLISH_TIMEOUT * 1000),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def _renew(self, broken: AIOKafkaProducer, reason: BaseException) -> None:
        """Replace a producer whose idempotence state is poisoned.

        A batch in flight when the broker stops can leave the producer's sequence numbers
        out of step with the restarted broker: every later send then fails with
        OutOfOrderSequenceNumber, for ever (the fault tests saw it). A new producer gets a
        new producer id and starts its sequences afresh; the jobs that failed keep their
        rows' deadlines and are re-published.
        """
        async with self._renewing:
            if self._producer is not broken:
                return  # another publish already renewed it
            fresh = self._make()
            await fresh.start()
            self._producer = fresh
        logger.bind(action="producer_renewed").warning("Kafka producer replaced after {!r}", reason)
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await broken.stop()

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        """Send a batch as one pipelined produce and wait for every ack; False (logged) if
        any failed.

        Every message is handed to the producer first, so they travel in a few large
        requests, and only then are the acks awaited. A failure is not fatal: the events
        keep their deadline and are re-published.
        """
        if not messages:
            return True
        topic = topic or self._settings.kafka_topic
        failures: list[BaseException] = []
        producer = self._producer
        tracing = self._tracing
        started = time.time_ns() if tracing is not None else 0
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                acks = []
                for m in messages:
                    # Each message on its own: one that fails (too large, say) must not
                    # hold back the rest of the batch.
                    value, key = orjson.dumps(m), message_key(m)
                    try:
                        if tracing is None:
                            acks.append(await producer.send(topic, value, key=key))
                        else:  # with a traceparent header naming the event's trace
                            headers = tracing.headers(m)
                            acks.append(await producer.send(topic, value, key=key, headers=headers))
                    except KafkaError as exc:
                        failures.append(exc)
                results = await asyncio.gather(*acks, return_exceptions=True)
        except TimeoutError as exc:
            results = [exc]
        failures += [r for r in results if isinstance(r, BaseException)]
        if tracing is not None:
            tracing.published(messages, topic, started, time.time_ns(), len(failures))
        if failures:
            poisoned = [f for f in failures if isinstance(f, POISON)]
            if poisoned:
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    await self._renew(producer, poisoned[0])
            logger.bind(action="publish_failed", topic=topic).warning(
                "could not publish {} of {} job(s): {!r}; they will be re-published",
                len(failures), len(messages), failures[0],
            )  # fmt: skip
            return False
        return True


Sent = Callable[[list[dict[str, Any]], bool], None]


class BackgroundPublisher:
    """Publishes in the background, in batches, for callers whose rows are committed.

    Not an outbox: the durable outbox is the event rows themselves (their deadline makes
    the re-publisher send whatever this never sent); this is only the in-memory queue in
    front of the producer.

    Callers hand over jobs and move on (a webhook call is answered, the next firing
    starts); whatever queued up while one batch was in flight goes out as the next one.
    Nothing here is needed for correctness: a job that is never sent (Kafka down, a
    crash, the queue full) keeps its row's deadline and is re-published.
    """

    def __init__(self, publisher: Publisher, on_sent: Sent | None = None) -> None:
        self._publisher = publisher
        self._on_sent = on_sent
        self._queue: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # nothing queued or being sent
        self._idle.set()

    def send(self, messages: Sequence[dict[str, Any]]) -> None:
        room = BACKGROUND_LIMIT - len(self._queue)
        if room < len(messages):
            logger.bind(action="background_queue_full").warning(
                "{} job(s) left to the re-publisher", len(messages) - max(room, 0)
            )
        self._queue.extend(messages[: max(room, 0)])
        self._idle.clear()
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="background-publisher")

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                batch, self._queue = self._queue[:BACKGROUND_BATCH], self._queue[BACKGROUND_BATCH:]
                ok = await self._publisher.publish(batch)
                if self._on_sent is not None:
                    self._on_sent(batch, ok)
            self._idle.set()

    async def close(self, grace: float) -> None:
        """Send what is queued (within `grace` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def job_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The workers' group consumer: offsets are committed by hand, after outcomes are stored."""
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=settings.kafka_group,
        client_id=f"eventtrigger-worker-{__version__}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        # A worker killed without leaving the group keeps its partitions (and the jobs
        # re-published to them) until the coordinator gives up on it: by default 6 s, the
        # lowest session timeout brokers accept by default (group.min.session.timeout.ms),
        # so recovery after a crash fits in the 10 s firing promise; a managed cluster may
        # require more (EVENTTRIGGER_KAFKA_SESSION_TIMEOUT). Survivors hear of the
        # rebalance at their next heartbeat, hence a frequent one.
        session_timeout_ms=int(settings.kafka_session_timeout.total_seconds() * 1000),
        heartbeat_interval_ms=500,
        # Notice new topics and partitions within seconds (the default is 5 minutes).
        metadata_max_age_ms=5000,
    )
