"""Settings: read once from the environment (then `.env`, then defaults) into one frozen object.

The object is built in `cli.py` and passed explicitly to whatever needs it; nothing reads
the environment anywhere else. A bad value raises SettingsError naming the variable, and
the CLI turns that into exit status 2.

VARIABLES lists every variable, with its default and meaning (the configuration
reference is generated from it); the reader refuses to read a setting it does not list.
A set `EVENTTRIGGER_*` variable that nothing reads (a misspelt setting) is not an error
but a warning naming the closest known one, carried in `Settings.warnings` for the
caller to log once logging is set up.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from eventtrigger.domain.durations import DurationError, parse_duration
from eventtrigger.domain.egress import Egress, allowed_host
from eventtrigger.domain.secretbox import Keyring, KeyringError, parse_keyring

ROLES = ("api", "scheduler", "worker", "retention")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Every setting's default, written once: the reader falls back to these strings and the
# Settings fields below are parsed from them (`EVENTTRIGGER_` + the key is the variable).
DEFAULTS: dict[str, str] = {
    "DATABASE_URL": "mysql://root@127.0.0.1:3306/eventtrigger",
    "DATABASE_POOL_SIZE": "10",
    # Keys that encrypt signing secrets at rest (`id:base64,...`, the first encrypts);
    # empty: secrets are stored in plaintext.
    "SECRET_KEY": "",
    "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "KAFKA_TOPIC": "eventtrigger.jobs",
    "KAFKA_GROUP": "eventtrigger-workers",
    "KAFKA_PARTITIONS": "6",
    "KAFKA_REPLICATION": "1",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "",
    "KAFKA_SASL_USERNAME": "",
    "KAFKA_SASL_PASSWORD": "",
    "KAFKA_SSL_CAFILE": "",
    "KAFKA_SSL_CERTFILE": "",
    "KAFKA_SSL_KEYFILE": "",
    "KAFKA_CREATE_TOPICS": "auto",
    "KAFKA_SESSION_TIMEOUT": "6s",
    "HTTP_HOST": "0.0.0.0",
    "HTTP_PORT": "8080",
    "PUBLIC_URL": "http://localhost:8080",
    "API_KEYS": "",
    "BOOTSTRAP_KEY_FILE": "",
    "BOOTSTRAP_KEYS": "enabled",
    "AUTH_FAILURE_BURST": "30",
    "AUTH": "enabled",
    "EGRESS_ALLOW_CIDRS": "",
    "EGRESS_ALLOW_HOSTS": "",
    "INGEST_IP_RATE": "0",
    "INGEST_IP_BURST": "400",
    "TRUSTED_PROXIES": "",
    "RETENTION_ACTIVE": "2h",
    "RETENTION_TOTAL": "48h",
    "RETENTION_INTERVAL": "30s",
    "AUDIT_RETENTION": "90d",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "MAX_BODY_BYTES": str(1024 * 1024),
    "SHUTDOWN_GRACE": "30s",
    "RECOVERY_AFTER": "5s",
    "WORKER_CONCURRENCY": "256",
    "WORKER_PER_HOST": "32",
}
DEFAULT_DURATIONS = {
    k: parse_duration(DEFAULTS[k])
    for k in ("RETENTION_ACTIVE", "RETENTION_TOTAL", "RETENTION_INTERVAL", "SHUTDOWN_GRACE",
              "RECOVERY_AFTER", "KAFKA_SESSION_TIMEOUT", "AUDIT_RETENTION")
}  # fmt: skip
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


@dataclass(frozen=True)
class Variable:
    """One environment variable: what it does and who reads it.

    `kind` says who: "setting" (load_settings, so Settings), "client" (the command-line
    client), "compose" (the compose files, from the `.env` beside them) or "test" (the
    test suite and the fault benchmarks). Only settings are read here; the others are
    listed so that they are documented and never reported as unknown.
    """

    name: str
    default: str
    meaning: str
    group: str
    kind: Literal["setting", "client", "compose", "test"] = "setting"


def _setting(key: str, group: str, meaning: str) -> Variable:
    return Variable(f"EVENTTRIGGER_{key}", DEFAULTS[key], meaning, group)


# The OpenTelemetry exporter's standard variable: tracing is on only when it is set.
OTEL_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
# Prefixes of variables nobody but the test suite reads (EVENTTRIGGER_TEST_DATABASE, ...).
TEST_VARIABLE_PREFIXES = ("EVENTTRIGGER_TEST_",)
# Every variable the platform, its client, its compose files and its tests read, written
# once: the reader refuses a setting missing here, start-up warns about an unknown
# EVENTTRIGGER_* name, and the configuration reference is generated from it.
VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        _setting(
            "DATABASE_URL",
            "Database",
            "`mysql://user[:password]@host[:port]/database[?options]`; MySQL 8.0+ or "
            "MariaDB 10.6+ (TiDB and older servers are refused at start: they lack a "
            "locking `SELECT ... FOR UPDATE SKIP LOCKED`). Options, MySQL's names: "
            "`ssl-mode` = `DISABLED`, `REQUIRED`, `VERIFY_CA` or `VERIFY_IDENTITY` "
            "(`PREFERRED` is refused: the driver cannot fall back), `ssl-ca`, `ssl-cert` + "
            "`ssl-key` (PEM paths). No ssl-* option: plaintext; `ssl-ca` or a client "
            "certificate without `ssl-mode`: `VERIFY_IDENTITY`. Any other option is a "
            "configuration error (exit 2). Every connection uses it: the pool, `migrate`, "
            "`/health`",
        ),
        _setting("DATABASE_POOL_SIZE", "Database", "connections per process"),
        _setting(
            "SECRET_KEY",
            "Database",
            "keys that encrypt signing secrets at rest, `<key id>:<base64 of 32 bytes>`, "
            "comma-separated: the first encrypts, all decrypt. Empty: stored in plaintext "
            "(`/health` says which)",
        ),
        _setting("KAFKA_BOOTSTRAP", "Kafka", "comma-separated brokers (`host:port`)"),
        _setting("KAFKA_TOPIC", "Kafka", "job topic; the dead-letter topic is `<topic>.dlq`"),
        _setting("KAFKA_GROUP", "Kafka", "the workers' consumer group"),
        _setting(
            "KAFKA_PARTITIONS",
            "Kafka",
            "partitions of the topics created at start; an existing topic's partition "
            "count is read from the broker and logged (`topics_ready`)",
        ),
        _setting("KAFKA_REPLICATION", "Kafka", "replication factor of the topics created at start"),
        _setting(
            "KAFKA_CREATE_TOPICS",
            "Kafka",
            "`auto` creates missing topics (a broker's refusal stops the start with its "
            "reason); `never`: both topics must exist",
        ),
        _setting(
            "KAFKA_SECURITY_PROTOCOL",
            "Kafka",
            "`PLAINTEXT`, or `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` for a managed Kafka",
        ),
        _setting(
            "KAFKA_SASL_MECHANISM",
            "Kafka",
            "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a `SASL_*` protocol)",
        ),
        _setting("KAFKA_SASL_USERNAME", "Kafka", "the SASL user name"),
        _setting(
            "KAFKA_SASL_PASSWORD",
            "Kafka",
            "the SASL password (taken as written, spaces included; never shown in logs)",
        ),
        _setting(
            "KAFKA_SSL_CAFILE",
            "Kafka",
            "PEM file of the brokers' CA (the system's CAs when empty)",
        ),
        _setting(
            "KAFKA_SSL_CERTFILE",
            "Kafka",
            "PEM file of a client certificate, for brokers that ask one",
        ),
        _setting("KAFKA_SSL_KEYFILE", "Kafka", "PEM file of the client certificate's key"),
        _setting(
            "KAFKA_SESSION_TIMEOUT",
            "Kafka",
            "the workers' consumer session timeout (raise it when the broker's "
            "`group.min.session.timeout.ms` is higher); at most `30m`",
        ),
        _setting(
            "HTTP_HOST",
            "HTTP",
            "address of the HTTP listener (every process serves `/health` and `/metrics`; "
            "the api role adds the API)",
        ),
        _setting("HTTP_PORT", "HTTP", "port of the HTTP listener"),
        _setting("PUBLIC_URL", "HTTP", "base of generated webhook URLs"),
        _setting("MAX_BODY_BYTES", "HTTP", "request body limit (413 above)"),
        _setting(
            "API_KEYS",
            "Access",
            "comma-separated management API keys; with none (and no "
            "`EVENTTRIGGER_BOOTSTRAP_KEY_FILE`) the api role refuses to start",
        ),
        _setting(
            "BOOTSTRAP_KEY_FILE",
            "Access",
            "empty: off (compose sets it). While `EVENTTRIGGER_API_KEYS` is empty, the "
            "first api process writes a new key (`etk_...`, mode 0600) to this file, logs "
            "it once (`bootstrap_key_generated`), and every api sharing the file uses it; "
            "`eventtrigger keys show-bootstrap` prints it again",
        ),
        _setting(
            "BOOTSTRAP_KEYS",
            "Access",
            "`disabled`: the keys of `EVENTTRIGGER_API_KEYS` and the bootstrap key file get "
            "401 and are not listed (once a managed `admin`/`keys:admin` key exists; "
            "checked per request)",
        ),
        _setting("AUTH", "Access", "`disabled` turns API keys off (local experiments only)"),
        _setting(
            "AUTH_FAILURE_BURST",
            "Access",
            "failed key checks one client address may make at full speed (refilling one "
            "a second); each further 401 to it waits 1 s",
        ),
        _setting(
            "INGEST_IP_RATE",
            "Access",
            "webhook calls a second one client address may make, per api process (`0`: "
            "no limit); beyond it 429 with `Retry-After`. IPv6 clients count by their /64",
        ),
        _setting(
            "INGEST_IP_BURST",
            "Access",
            "webhook calls one client address may make at once, per api process",
        ),
        _setting(
            "TRUSTED_PROXIES",
            "Access",
            "CIDRs of your reverse proxies: only on connections from them does "
            "`X-Forwarded-For` name the client (per-address limits)",
        ),
        _setting(
            "EGRESS_ALLOW_CIDRS",
            "Egress",
            "CIDRs deliveries may reach although private/loopback, e.g. `127.0.0.0/8`",
        ),
        _setting(
            "EGRESS_ALLOW_HOSTS",
            "Egress",
            "host names (exact, case-insensitive, no wildcards) deliveries may reach "
            "whatever they resolve to, private addresses included, e.g. "
            "`echo,host.docker.internal` (compose sets `echo`); checked when a trigger is "
            "saved and again when the worker connects. IP addresses belong in "
            "`EVENTTRIGGER_EGRESS_ALLOW_CIDRS`",
        ),
        _setting("RETENTION_ACTIVE", "Retention", "active window of event logs"),
        _setting(
            "RETENTION_TOTAL",
            "Retention",
            "event logs (and idempotency keys) are deleted after this; longer than "
            "`EVENTTRIGGER_RETENTION_ACTIVE`",
        ),
        _setting("RETENTION_INTERVAL", "Retention", "how often the retention role runs"),
        _setting(
            "AUDIT_RETENTION",
            "Retention",
            "how long audit entries are kept (at least `1h`); the retention role deletes "
            "older ones in batches",
        ),
        _setting("WORKER_CONCURRENCY", "Processes", "deliveries in flight per worker process"),
        _setting(
            "WORKER_PER_HOST",
            "Processes",
            "deliveries in flight per worker process to one endpoint host",
        ),
        _setting(
            "RECOVERY_AFTER",
            "Processes",
            "how long work held by a crashed process (a claimed occurrence, an "
            "unpublished event, a delivery in progress) waits before another process "
            "takes it over; live holders renew their leases every quarter of it",
        ),
        _setting(
            "SHUTDOWN_GRACE",
            "Processes",
            "how long a stopping process lets in-flight deliveries finish",
        ),
        _setting(
            "LOG_LEVEL",
            "Observability",
            "`TRACE`, `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`",
        ),
        _setting("LOG_FORMAT", "Observability", "`json`, or `text` for humans"),
        Variable(
            OTEL_ENDPOINT_VARIABLE,
            "",
            "OpenTelemetry's standard variable: traces go to `<endpoint>/v1/traces` (OTLP "
            "over HTTP), one per event. Empty: no tracing. The SDK reads the other "
            "standard `OTEL_*` variables itself (`OTEL_SERVICE_NAME`, "
            "`OTEL_EXPORTER_OTLP_HEADERS`, ...)",
            "Observability",
        ),
        Variable(
            "EVENTTRIGGER_URL",
            "http://localhost:8080",
            "the API the command-line client calls; `--url` wins",
            "Client",
            "client",
        ),
        Variable(
            "EVENTTRIGGER_API_KEY",
            "",
            "the management API key the command-line client sends; `--api-key` wins",
            "Client",
            "client",
        ),
        Variable(
            "EVENTTRIGGER_PROFILE",
            "",
            "the command-line client's profile in `~/.config/eventtrigger/config.toml`; "
            "`--profile` wins",
            "Client",
            "client",
        ),
        Variable(
            "EVENTTRIGGER_BIND",
            "127.0.0.1",
            "where the dev stack publishes the API (`0.0.0.0` opens it to the network)",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_HOST_PORT",
            "8080",
            "host port of the dev stack's API; `EVENTTRIGGER_PUBLIC_URL` follows it unless set",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_DOMAIN",
            "localhost",
            "production overlay: Caddy's site; a public name gets an ACME certificate, "
            "`localhost` Caddy's own CA",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_HTTPS_PORT",
            "443",
            "production overlay: the published HTTPS port (a non-443 port goes into the "
            "public URL); `EVENTTRIGGER_HTTP_PORT` is then the published HTTP port (`80`)",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_BACKUP_DIR",
            "./backups",
            "production overlay: where database dumps go on the host",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_BACKUP_INTERVAL",
            "24h",
            "production overlay: how often the database is dumped",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_BACKUP_KEEP_DAYS",
            "7",
            "production overlay: how many days dumps are kept",
            "Compose",
            "compose",
        ),
        Variable(
            "EVENTTRIGGER_CHAOS",
            "",
            "`1` runs the long fault scenarios of the test suite (`make chaos` sets it)",
            "Tests",
            "test",
        ),
        Variable(
            "EVENTTRIGGER_CHAOS_RESULTS",
            "",
            "where the fault scenarios write their report",
            "Tests",
            "test",
        ),
        Variable(
            "EVENTTRIGGER_UPDATE_DOCS",
            "",
            "`1`: tests/e2e/test_cli_doc.py writes the CLI's real output into "
            "docs/how-to/cli.md instead of comparing",
            "Tests",
            "test",
        ),
        Variable(
            "EVENTTRIGGER_SIGNING_SECRET",
            "",
            "read by the verification examples (docs/snippets), not by eventtrigger: the "
            "trigger's `whsec_` secret a receiver checks signatures with",
            "Client",
            "client",
        ),
    )
}


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


SslMode = Literal["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"]
SSL_MODES: tuple[SslMode, ...] = ("DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
# The query options EVENTTRIGGER_DATABASE_URL accepts (MySQL's URI names); any other is
# an error, so a misspelt `ssl_mode` cannot leave the connection in plaintext.
DATABASE_URL_OPTIONS = ("ssl-mode", "ssl-ca", "ssl-cert", "ssl-key")


@dataclass(frozen=True)
class DatabaseTls:
    """How every database connection encrypts and checks the server (store/tls.py builds
    the context). Modes as MySQL's client: REQUIRED encrypts without checking the
    certificate, VERIFY_CA checks its chain, VERIFY_IDENTITY its chain and host name."""

    mode: SslMode = "DISABLED"
    ca: Path | None = None  # None with a VERIFY_* mode: the system's CAs
    cert: Path | None = None  # a client certificate (users created REQUIRE X509)
    key: Path | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    user: str
    password: Secret
    database: str
    pool_size: int
    tls: DatabaseTls = DatabaseTls()
    # EVENTTRIGGER_SECRET_KEY: what reads and writes the signing-secret columns, so every
    # connection to this database (Database, Tx) carries it and no caller passes it on.
    secrets: Keyring = field(default_factory=Keyring)


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client authenticates and encrypts (bus.client_options uses it)."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: str | None = None  # one of KAFKA_SASL_MECHANISMS with a SASL protocol
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=lambda: Secret(""))
    # None with an SSL protocol: the system's CAs verify the brokers (managed clusters).
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None  # a client certificate, for brokers that ask one
    ssl_keyfile: Path | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def ssl(self) -> bool:
        return self.protocol.endswith("SSL")


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    kafka_bootstrap: tuple[str, ...] = (DEFAULTS["KAFKA_BOOTSTRAP"],)
    kafka_topic: str = DEFAULTS["KAFKA_TOPIC"]
    kafka_group: str = DEFAULTS["KAFKA_GROUP"]
    kafka_partitions: int = int(DEFAULTS["KAFKA_PARTITIONS"])
    kafka_replication: int = int(DEFAULTS["KAFKA_REPLICATION"])
    kafka_security: KafkaSecurity = KafkaSecurity()
    # "never": the topics are the operator's (a managed cluster); a missing one stops the start.
    kafka_create_topics: Literal["auto", "never"] = "auto"
    kafka_session_timeout: timedelta = DEFAULT_DURATIONS["KAFKA_SESSION_TIMEOUT"]
    http_host: str = DEFAULTS["HTTP_HOST"]
    http_port: int = int(DEFAULTS["HTTP_PORT"])
    public_url: str = DEFAULTS["PUBLIC_URL"]
    api_keys: tuple[Secret, ...] = ()
    auth_enabled: bool = True
    # With no api_keys, the api role reads its key from this file (made on first start).
    bootstrap_key_file: Path | None = None
    # False once managed keys took over: the keys above (and the file's) are then refused.
    bootstrap_keys_enabled: bool = DEFAULTS["BOOTSTRAP_KEYS"] == "enabled"
    # Refused key checks one client address may make at full speed (then one more a
    # second); beyond that each further 401 to it is answered a second late.
    auth_failure_burst: int = int(DEFAULTS["AUTH_FAILURE_BURST"])
    egress_allow: tuple[IPNetwork, ...] = ()
    egress_allow_hosts: frozenset[str] = frozenset()  # as domain.egress.host_key spells them
    # Webhook calls one client address may make a second (0: no limit), and at once;
    # per api process. IPv6 clients are counted by their /64.
    ingest_ip_rate: float = float(DEFAULTS["INGEST_IP_RATE"])
    ingest_ip_burst: int = int(DEFAULTS["INGEST_IP_BURST"])
    # Peers whose X-Forwarded-For names the client (our reverse proxies); nobody's else.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    retention_active: timedelta = DEFAULT_DURATIONS["RETENTION_ACTIVE"]
    retention_total: timedelta = DEFAULT_DURATIONS["RETENTION_TOTAL"]
    retention_interval: timedelta = DEFAULT_DURATIONS["RETENTION_INTERVAL"]
    # How long the audit trail keeps a row (the retention role deletes older ones).
    audit_retention: timedelta = DEFAULT_DURATIONS["AUDIT_RETENTION"]
    log_level: str = DEFAULTS["LOG_LEVEL"]
    log_format: Literal["json", "text"] = "json"
    max_body_bytes: int = int(DEFAULTS["MAX_BODY_BYTES"])
    shutdown_grace: timedelta = DEFAULT_DURATIONS["SHUTDOWN_GRACE"]
    # How long work held by a process that died waits before another process takes it:
    # claimed occurrences, unpublished events, deliveries in progress. Live holders renew
    # their leases well within it; 5 s leaves a firing interrupted by a crash inside
    # the 10 s firing promise (with Kafka's 6 s session timeout, bus.py).
    recovery_after: timedelta = DEFAULT_DURATIONS["RECOVERY_AFTER"]
    worker_concurrency: int = int(DEFAULTS["WORKER_CONCURRENCY"])
    worker_per_host: int = int(DEFAULTS["WORKER_PER_HOST"])
    # OTEL_EXPORTER_OTLP_ENDPOINT: where traces go; None (unset or empty) turns tracing off.
    otel_endpoint: str | None = None
    # What the caller logs once logging is set up (unknown EVENTTRIGGER_* variables):
    # settings are read before there is a logger to tell.
    warnings: tuple[str, ...] = ()

    @property
    def dlq_topic(self) -> str:
        return f"{self.kafka_topic}.dlq"

    @property
    def egress(self) -> Egress:
        """The SSRF policy's exceptions: both allow-lists as one value."""
        return Egress(cidrs=self.egress_allow, hosts=self.egress_allow_hosts)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Build Settings from `environ` (default os.environ) over the `.env` file."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _Reader(values).settings()


def unknown_variable_warnings(names: Iterable[str]) -> tuple[str, ...]:
    """One warning per `EVENTTRIGGER_*` name in `names` that nothing reads (a misspelt
    setting is otherwise silently ignored), naming the closest known variable."""
    known = [v.name for v in VARIABLES.values()]
    warnings = []
    for name in sorted(set(names)):
        if (
            not name.startswith("EVENTTRIGGER_")
            or name in VARIABLES
            or name.startswith(TEST_VARIABLE_PREFIXES)
        ):
            continue
        message = f"{name} is not a setting eventtrigger knows"
        if guess := closest_variable(name, known):
            message += f"; did you mean {guess}?"
        else:
            message += "; it is ignored"
        warnings.append(message)
    return tuple(warnings)


def closest_variable(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name`, or None: among difflib's close matches, the one
    sharing the most `_`-separated words, then the most similar. Compared without the
    common `EVENTTRIGGER_` prefix, which would make any two names look alike. Words count
    first because a name with a word too many (`WORKER_CONCURRENCY_PER_HOST`) is
    closest, letter by letter, to the wrong setting (`WORKER_CONCURRENCY`), not to the
    one it means (`WORKER_PER_HOST`)."""
    by_stem = {_stem(k): k for k in known}
    stem = _stem(name)
    words = set(stem.split("_"))
    candidates = difflib.get_close_matches(stem, list(by_stem), n=5, cutoff=0.6)
    if not candidates:
        return None

    def rank(candidate: str) -> tuple[int, float]:
        shared = len(words & set(candidate.split("_")))
        return shared, difflib.SequenceMatcher(None, stem, candidate).ratio()

    return by_stem[max(candidates, key=rank)]


def _stem(name: str) -> str:
    return name.removeprefix("EVENTTRIGGER_")


class _Reader:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()  # the variables read, for the registry's test

    def _raw(self, variable: str) -> str | None:
        """The value of a variable VARIABLES lists as a setting; reading any other is a
        bug here (it would be undocumented and reported as unknown), so it raises."""
        entry = VARIABLES.get(variable)
        if entry is None or entry.kind != "setting":
            raise LookupError(f"{variable} is read but VARIABLES does not list it as a setting")
        self.read.add(variable)
        return self._values.get(variable)

    def _get(self, name: str) -> str:
        raw = self._raw(f"EVENTTRIGGER_{name}")
        return (DEFAULTS[name] if raw is None else raw).strip()

    def _duration(self, name: str, minimum: timedelta) -> timedelta:
        try:
            value = parse_duration(self._get(name))
        except DurationError as exc:
            raise SettingsError(f"EVENTTRIGGER_{name}", str(exc)) from None
        if value < minimum:
            raise SettingsError(f"EVENTTRIGGER_{name}", f"must be at least {minimum}")
        return value

    def _int(self, name: str, low: int, high: int, what: str) -> int:
        raw = self._get(name)
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise SettingsError(f"EVENTTRIGGER_{name}", f"{raw!r} is not {what} ({low}-{high})")
        return value

    def _choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self._get(name)
        if value.lower() not in choices:
            raise SettingsError(
                f"EVENTTRIGGER_{name}", f"{value!r} is not one of {', '.join(choices)}"
            )
        return value.lower()

    def settings(self) -> Settings:
        active = self._duration("RETENTION_ACTIVE", timedelta(seconds=1))
        total = self._duration("RETENTION_TOTAL", timedelta(seconds=1))
        if total <= active:
            raise SettingsError(
                "EVENTTRIGGER_RETENTION_TOTAL", "must be longer than EVENTTRIGGER_RETENTION_ACTIVE"
            )
        brokers = tuple(b.strip() for b in self._get("KAFKA_BOOTSTRAP").split(","))
        if not all(b.rpartition(":")[0] and b.rpartition(":")[2].isdigit() for b in brokers):
            raise SettingsError("EVENTTRIGGER_KAFKA_BOOTSTRAP", "expected host:port[,host:port...]")
        public_url = self._get("PUBLIC_URL").rstrip("/")
        if (
            urlsplit(public_url).scheme not in ("http", "https")
            or not urlsplit(public_url).hostname
        ):
            raise SettingsError("EVENTTRIGGER_PUBLIC_URL", "expected an http(s) URL")
        return Settings(
            database=self._database(),
            kafka_bootstrap=brokers,
            kafka_topic=self._topic(),
            kafka_group=self._get("KAFKA_GROUP") or DEFAULTS["KAFKA_GROUP"],
            kafka_partitions=self._int("KAFKA_PARTITIONS", 1, 1000, "a partition count"),
            kafka_replication=self._int("KAFKA_REPLICATION", 1, 10, "a replication factor"),
            kafka_security=self._kafka_security(),
            kafka_create_topics=(
                "never"
                if self._choice("KAFKA_CREATE_TOPICS", ("auto", "never")) == "never"
                else "auto"
            ),
            kafka_session_timeout=self._session_timeout(),
            http_host=self._get("HTTP_HOST"),
            http_port=self._int("HTTP_PORT", 1, 65535, "a port number"),
            public_url=public_url,
            api_keys=tuple(
                Secret(k.strip()) for k in self._get("API_KEYS").split(",") if k.strip()
            ),
            auth_enabled=self._choice("AUTH", ("enabled", "disabled")) == "enabled",
            bootstrap_key_file=Path(raw) if (raw := self._get("BOOTSTRAP_KEY_FILE")) else None,
            bootstrap_keys_enabled=(
                self._choice("BOOTSTRAP_KEYS", ("enabled", "disabled")) == "enabled"
            ),
            auth_failure_burst=self._int("AUTH_FAILURE_BURST", 1, 100000, "a count"),
            egress_allow=self._cidrs(),
            egress_allow_hosts=self._hosts(),
            ingest_ip_rate=self._rate("INGEST_IP_RATE"),
            ingest_ip_burst=self._int("INGEST_IP_BURST", 1, 1_000_000, "a count"),
            trusted_proxies=self._cidrs("TRUSTED_PROXIES"),
            retention_active=active,
            retention_total=total,
            retention_interval=self._duration("RETENTION_INTERVAL", timedelta(seconds=0.1)),
            audit_retention=self._duration("AUDIT_RETENTION", timedelta(hours=1)),
            log_level=self._choice(
                "LOG_LEVEL", ("trace", "debug", "info", "warning", "error", "critical")
            ).upper(),
            log_format="json" if self._choice("LOG_FORMAT", ("json", "text")) == "json" else "text",
            max_body_bytes=self._int("MAX_BODY_BYTES", 1024, 64 * 1024 * 1024, "a size in bytes"),
            shutdown_grace=self._duration("SHUTDOWN_GRACE", timedelta(0)),
            recovery_after=self._duration("RECOVERY_AFTER", timedelta(seconds=1)),
            worker_concurrency=self._int("WORKER_CONCURRENCY", 1, 10000, "a task count"),
            worker_per_host=self._int("WORKER_PER_HOST", 1, 10000, "a task count"),
            otel_endpoint=(self._raw(OTEL_ENDPOINT_VARIABLE) or "").strip() or None,
            warnings=unknown_variable_warnings(self._values),
        )

    def _topic(self) -> str:
        topic = self._get("KAFKA_TOPIC")
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not topic or len(topic) > 200 or not set(topic) <= allowed:
            raise SettingsError("EVENTTRIGGER_KAFKA_TOPIC", "use 1-200 of [a-zA-Z0-9._-]")
        return topic

    def _session_timeout(self) -> timedelta:
        value = self._duration("KAFKA_SESSION_TIMEOUT", timedelta(seconds=1))
        # Brokers refuse more than group.max.session.timeout.ms (30 minutes by default).
        if value > timedelta(minutes=30):
            raise SettingsError("EVENTTRIGGER_KAFKA_SESSION_TIMEOUT", "must be at most 30m")
        return value

    def _kafka_security(self) -> KafkaSecurity:
        protocol = self._get("KAFKA_SECURITY_PROTOCOL").upper()
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise SettingsError(
                "EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL",
                f"{protocol!r} is not one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}",
            )
        security = KafkaSecurity(
            protocol=protocol,  # type: ignore[arg-type]  # checked just above
            sasl_mechanism=self._get("KAFKA_SASL_MECHANISM").upper() or None,
            sasl_username=self._get("KAFKA_SASL_USERNAME"),
            # Not stripped: spaces may be part of a password.
            sasl_password=Secret(self._raw("EVENTTRIGGER_KAFKA_SASL_PASSWORD") or ""),
            ssl_cafile=self._file("KAFKA_SSL_CAFILE"),
            ssl_certfile=self._file("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=self._file("KAFKA_SSL_KEYFILE"),
        )
        sasl = {
            "KAFKA_SASL_MECHANISM": security.sasl_mechanism,
            "KAFKA_SASL_USERNAME": security.sasl_username,
            "KAFKA_SASL_PASSWORD": str(security.sasl_password),
        }
        ssl = {
            "KAFKA_SSL_CAFILE": security.ssl_cafile,
            "KAFKA_SSL_CERTFILE": security.ssl_certfile,
            "KAFKA_SSL_KEYFILE": security.ssl_keyfile,
        }
        # A credential or file the protocol would ignore is a mistake, not a default: the
        # process would talk in clear to a broker the operator meant to secure.
        for group, needs in ((sasl, "SASL_PLAINTEXT or SASL_SSL"), (ssl, "SSL or SASL_SSL")):
            wanted = security.sasl if group is sasl else security.ssl
            for name, value in group.items():
                if value and not wanted:
                    raise SettingsError(
                        f"EVENTTRIGGER_{name}",
                        f"needs EVENTTRIGGER_KAFKA_SECURITY_PROTOCOL={needs} (it is {protocol})",
                    )
        if security.sasl:
            for name, value in sasl.items():
                if not value:
                    raise SettingsError(f"EVENTTRIGGER_{name}", f"required with {protocol}")
            if security.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                raise SettingsError(
                    "EVENTTRIGGER_KAFKA_SASL_MECHANISM",
                    f"{security.sasl_mechanism!r} is not one of {', '.join(KAFKA_SASL_MECHANISMS)}",
                )
        if security.ssl_keyfile and not security.ssl_certfile:
            raise SettingsError(
                "EVENTTRIGGER_KAFKA_SSL_KEYFILE", "needs EVENTTRIGGER_KAFKA_SSL_CERTFILE as well"
            )
        return security

    def _file(self, name: str) -> Path | None:
        raw = self._get(name)
        if not raw:
            return None
        path = Path(raw)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise SettingsError(f"EVENTTRIGGER_{name}", f"{raw!r} is not a readable file")
        return path

    def _hosts(self) -> frozenset[str]:
        hosts: set[str] = set()
        for item in self._get("EGRESS_ALLOW_HOSTS").split(","):
            if item.strip():
                try:
                    hosts.add(allowed_host(item))
                except ValueError as exc:
                    raise SettingsError("EVENTTRIGGER_EGRESS_ALLOW_HOSTS", str(exc)) from None
        return frozenset(hosts)

    def _rate(self, name: str) -> float:
        raw = self._get(name)
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (value == 0 or 0.001 <= value <= 1_000_000):  # NaN fails this too
            raise SettingsError(
                f"EVENTTRIGGER_{name}",
                f"{raw!r} is not a rate per second (0.001-1000000, or 0 for no limit)",
            )
        return value

    def _cidrs(self, name: str = "EGRESS_ALLOW_CIDRS") -> tuple[IPNetwork, ...]:
        networks: list[IPNetwork] = []
        for item in self._get(name).split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SettingsError(
                    f"EVENTTRIGGER_{name}", f"{item.strip()!r} is not a CIDR"
                ) from None
        return tuple(networks)

    def _database(self) -> DatabaseSettings:
        name = "EVENTTRIGGER_DATABASE_URL"
        url = urlsplit(self._get("DATABASE_URL"))
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
            pool_size=self._int("DATABASE_POOL_SIZE", 1, 500, "a pool size"),
            tls=self._database_tls(url.query),
            secrets=self._keyring(),
        )

    def _keyring(self) -> Keyring:
        try:
            return parse_keyring(self._get("SECRET_KEY"))
        except KeyringError as exc:
            raise SettingsError("EVENTTRIGGER_SECRET_KEY", str(exc)) from None

    @staticmethod
    def _database_tls(query: str) -> DatabaseTls:
        """The URL's `?ssl-mode=...&ssl-ca=...&ssl-cert=...&ssl-key=...` (MySQL's names)."""
        name = "EVENTTRIGGER_DATABASE_URL"
        options: dict[str, str] = {}
        # Split by hand, not parse_qsl: it turns `+` into a space, and a path may hold one.
        for item in query.split("&"):
            if not item:
                continue
            key, _, value = (unquote(part) for part in item.partition("="))
            if key not in DATABASE_URL_OPTIONS:
                raise SettingsError(
                    name, f"unknown option {key!r} (known: {', '.join(DATABASE_URL_OPTIONS)})"
                )
            if key in options:
                raise SettingsError(name, f"{key} is given twice")
            if not value.strip():
                raise SettingsError(name, f"{key} needs a value")
            options[key] = value.strip()
        files: dict[str, Path] = {}
        for key in ("ssl-ca", "ssl-cert", "ssl-key"):
            if key in options:
                path = Path(options[key])
                if not path.is_file() or not os.access(path, os.R_OK):
                    raise SettingsError(name, f"{key}: {options[key]!r} is not a readable file")
                files[key] = path
        for one, other in (("ssl-cert", "ssl-key"), ("ssl-key", "ssl-cert")):
            if one in files and other not in files:
                raise SettingsError(name, f"{one} needs {other} as well")
        mode = options.get("ssl-mode", "").upper()
        if mode == "PREFERRED":
            raise SettingsError(
                name,
                "ssl-mode=PREFERRED is not supported: the driver cannot fall back to "
                "plaintext, so pick REQUIRED or DISABLED",
            )
        if not mode:
            # No ssl-mode: plaintext as before when no ssl-* option is given; with a CA or
            # a client certificate the operator wants TLS, so the strictest mode,
            # VERIFY_IDENTITY (the chain against ssl-ca, else the system's CAs, and the
            # host name), never a silent downgrade.
            mode = "VERIFY_IDENTITY" if files else "DISABLED"
        if mode not in SSL_MODES:
            raise SettingsError(
                name, f"ssl-mode={options['ssl-mode']!r} is not one of {', '.join(SSL_MODES)}"
            )
        # A file the mode would ignore is a mistake, not a default: the operator thinks
        # the server is checked (ssl-ca) or the connection encrypted when it is not.
        if mode == "DISABLED" and files:
            raise SettingsError(name, f"{', '.join(files)} needs an ssl-mode other than DISABLED")
        if mode == "REQUIRED" and "ssl-ca" in files:
            raise SettingsError(
                name,
                "ssl-mode=REQUIRED does not check the server's certificate, so ssl-ca would "
                "be ignored: use VERIFY_CA or VERIFY_IDENTITY",
            )
        return DatabaseTls(
            mode=mode,  # narrowed to SslMode by the `not in SSL_MODES` check
            ca=files.get("ssl-ca"),
            cert=files.get("ssl-cert"),
            key=files.get("ssl-key"),
        )
