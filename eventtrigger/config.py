"""Settings: read once from the environment (then `.env`, then defaults) into one frozen object.

The object is built in `cli.py` and passed explicitly to whatever needs it; nothing reads
the environment anywhere else. A bad value raises SettingsError naming the variable, and
the CLI turns that into exit status 2.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from eventtrigger.domain.durations import DurationError, parse_duration

ROLES = ("api", "scheduler", "worker", "retention")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Secret:
    """A value that never shows in repr or logs (as starlette's Secret)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    user: str
    password: Secret
    database: str
    pool_size: int


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    kafka_bootstrap: tuple[str, ...] = ("127.0.0.1:9092",)
    kafka_topic: str = "eventtrigger.jobs"
    kafka_group: str = "eventtrigger-workers"
    kafka_partitions: int = 6
    kafka_replication: int = 1
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    public_url: str = "http://localhost:8080"
    api_keys: tuple[Secret, ...] = ()
    auth_enabled: bool = True
    egress_allow: tuple[IPNetwork, ...] = ()
    retention_active: timedelta = timedelta(hours=2)
    retention_total: timedelta = timedelta(hours=48)
    retention_interval: timedelta = timedelta(seconds=30)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    max_body_bytes: int = 1024 * 1024
    shutdown_grace: timedelta = timedelta(seconds=30)
    # How long work held by a process that died waits before another process takes it:
    # claimed occurrences, unpublished events, deliveries in progress. Live holders renew
    # their leases well within it; 5 s leaves a firing interrupted by a crash inside
    # the 10 s firing promise (with Kafka's 6 s session timeout, bus.py).
    recovery_after: timedelta = timedelta(seconds=5)
    worker_concurrency: int = 256
    worker_per_host: int = 32

    @property
    def dlq_topic(self) -> str:
        return f"{self.kafka_topic}.dlq"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Build Settings from `environ` (default os.environ) over the `.env` file."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _Reader(values).settings()


class _Reader:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def _get(self, name: str, default: str) -> str:
        return self._values.get(f"EVENTTRIGGER_{name}", default).strip()

    def _duration(self, name: str, default: str, minimum: timedelta) -> timedelta:
        try:
            value = parse_duration(self._get(name, default))
        except DurationError as exc:
            raise SettingsError(f"EVENTTRIGGER_{name}", str(exc)) from None
        if value < minimum:
            raise SettingsError(f"EVENTTRIGGER_{name}", f"must be at least {minimum}")
        return value

    def _int(self, name: str, default: str, low: int, high: int, what: str) -> int:
        raw = self._get(name, default)
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise SettingsError(f"EVENTTRIGGER_{name}", f"{raw!r} is not {what} ({low}-{high})")
        return value

    def _choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._get(name, default)
        if value.lower() not in choices:
            raise SettingsError(
                f"EVENTTRIGGER_{name}", f"{value!r} is not one of {', '.join(choices)}"
            )
        return value.lower()

    def settings(self) -> Settings:
        active = self._duration("RETENTION_ACTIVE", "2h", timedelta(seconds=1))
        total = self._duration("RETENTION_TOTAL", "48h", timedelta(seconds=1))
        if total <= active:
            raise SettingsError(
                "EVENTTRIGGER_RETENTION_TOTAL", "must be longer than EVENTTRIGGER_RETENTION_ACTIVE"
            )
        brokers = tuple(
            b.strip() for b in self._get("KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(",")
        )
        if not all(b.rpartition(":")[0] and b.rpartition(":")[2].isdigit() for b in brokers):
            raise SettingsError("EVENTTRIGGER_KAFKA_BOOTSTRAP", "expected host:port[,host:port...]")
        public_url = self._get("PUBLIC_URL", "http://localhost:8080").rstrip("/")
        if (
            urlsplit(public_url).scheme not in ("http", "https")
            or not urlsplit(public_url).hostname
        ):
            raise SettingsError("EVENTTRIGGER_PUBLIC_URL", "expected an http(s) URL")
        return Settings(
            database=self._database(),
            kafka_bootstrap=brokers,
            kafka_topic=self._topic(),
            kafka_group=self._get("KAFKA_GROUP", "eventtrigger-workers") or "eventtrigger-workers",
            kafka_partitions=self._int("KAFKA_PARTITIONS", "6", 1, 1000, "a partition count"),
            kafka_replication=self._int("KAFKA_REPLICATION", "1", 1, 10, "a replication factor"),
            http_host=self._get("HTTP_HOST", "0.0.0.0"),
            http_port=self._int("HTTP_PORT", "8080", 1, 65535, "a port number"),
            public_url=public_url,
            api_keys=tuple(
                Secret(k.strip()) for k in self._get("API_KEYS", "").split(",") if k.strip()
            ),
            auth_enabled=self._choice("AUTH", "enabled", ("enabled", "disabled")) == "enabled",
            egress_allow=self._cidrs(),
            retention_active=active,
            retention_total=total,
            retention_interval=self._duration("RETENTION_INTERVAL", "30s", timedelta(seconds=0.1)),
            log_level=self._choice(
                "LOG_LEVEL", "INFO", ("trace", "debug", "info", "warning", "error", "critical")
            ).upper(),
            log_format="json"
            if self._choice("LOG_FORMAT", "json", ("json", "text")) == "json"
            else "text",
            max_body_bytes=self._int(
                "MAX_BODY_BYTES", str(1024 * 1024), 1024, 64 * 1024 * 1024, "a size in bytes"
            ),
            shutdown_grace=self._duration("SHUTDOWN_GRACE", "30s", timedelta(0)),
            recovery_after=self._duration("RECOVERY_AFTER", "5s", timedelta(seconds=1)),
            worker_concurrency=self._int("WORKER_CONCURRENCY", "256", 1, 10000, "a task count"),
            worker_per_host=self._int("WORKER_PER_HOST", "32", 1, 10000, "a task count"),
        )

    def _topic(self) -> str:
        topic = self._get("KAFKA_TOPIC", "eventtrigger.jobs")
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not topic or len(topic) > 200 or not set(topic) <= allowed:
            raise SettingsError("EVENTTRIGGER_KAFKA_TOPIC", "use 1-200 of [a-zA-Z0-9._-]")
        return topic

    def _cidrs(self) -> tuple[IPNetwork, ...]:
        networks: list[IPNetwork] = []
        for item in self._get("EGRESS_ALLOW_CIDRS", "").split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SettingsError(
                    "EVENTTRIGGER_EGRESS_ALLOW_CIDRS", f"{item.strip()!r} is not a CIDR"
                ) from None
        return tuple(networks)

    def _database(self) -> DatabaseSettings:
        name = "EVENTTRIGGER_DATABASE_URL"
        url = urlsplit(self._get("DATABASE_URL", "mysql://root@127.0.0.1:3306/eventtrigger"))
        if url.scheme not in ("mysql", "mariadb", "mysql+asyncmy"):
            raise SettingsError(name, "expected mysql://user[:password]@host[:port]/database")
        database = url.path.lstrip("/")
        if not database or not url.hostname:
            raise SettingsError(name, "the URL needs a host and a database name")
        if not database.replace("_", "").replace("-", "").isalnum():
            raise SettingsError(name, f"{database!r} is not a plain database name")
        try:
            port = url.port or 3306
        except ValueError:
            raise SettingsError(name, "the port is not a number") from None
        return DatabaseSettings(
            host=url.hostname,
            port=port,
            user=unquote(url.username or "root"),
            password=Secret(unquote(url.password or "")),
            database=database,
            pool_size=self._int("DATABASE_POOL_SIZE", "10", 1, 500, "a pool size"),
        )
