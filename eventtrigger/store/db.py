"""The database pool and a thin transaction helper over asyncmy.

Times cross this boundary as aware UTC datetimes: we pass UTC values (asyncmy writes the
wall-clock fields and ignores tzinfo, so they must already be UTC) and stamp UTC on what
we read, since DATETIME columns hold naive UTC. JSON columns come back as text on MariaDB
and are decoded here, once.

Isolation: every session runs READ COMMITTED. Under REPEATABLE READ a locking scan (the
scheduler's `SELECT ... FOR UPDATE SKIP LOCKED` over due occurrences) also locks the gaps
between index entries, so an API insert of a new occurrence due soon waited on the
scheduler's gap lock while the scheduler waited on the API's new row: deadlock 1213 under
load. READ COMMITTED takes no gap locks (our unique keys, not gap locks, prevent
duplicates). Reads that must see two tables at one instant use `snapshot()`.

Lock conflicts: a deadlock victim or a lock wait timeout is run again (`run`), bounded and
with jitter, so a lost race never reaches the API as a 5xx.

Dead connections: after a failover the old server's connections can be half-open, a
peer that never answers and never closes. Without a bound a statement on one waits
forever, and with it the role's loop (and, holding the pool's lock while it connects, the
pool). So every wait for the server is bounded: the login's reads and each statement by
`statement_timeout` (the driver then closes the connection, and the pool never hands a
closed one out again), taking a connection from the pool by `acquire_timeout`, and idle
connections are probed by TCP keepalive. Both timeouts raise errors in
`TRANSIENT_ERRORS`, so callers' retry paths apply. A statement that may legitimately run
longer (migrations) uses a connection of its own with a longer bound.

TLS and the server: every connection here (and `migrate`'s) carries the one context
`store/tls.py` builds from the URL's ssl-* options. A refusal waiting will not fix (a
certificate that does not verify, a server that demands TLS we were not configured for,
a server without `SELECT ... FOR UPDATE SKIP LOCKED`) is a `DatabaseSetupError`, which is
not in `TRANSIENT_ERRORS`: the start stops at once with one line instead of retrying for
a minute. The server is checked once per process, when the pool connects, and by
`migrate`: TiDB, MySQL before 8.0 and MariaDB before 10.6 would otherwise start and then
hand the same due work to two schedulers, or fail on the first claim.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncmy
import orjson
from asyncmy.cursors import DictCursor

from eventtrigger.config import DatabaseSettings
from eventtrigger.domain.secretbox import Keyring
from eventtrigger.store.tls import describe_refusal, ssl_context

Row = dict[str, Any]

# A lost connection or a server that is not there yet; worth a retry by the caller.
# `TimeoutError` (a bounded wait that ran out) is an `OSError`, so it is one of them.
TRANSIENT_ERRORS = (OSError, asyncmy.errors.OperationalError, asyncmy.errors.InterfaceError)
DUPLICATE_KEY = 1062

# Seconds. Our statements answer in milliseconds; the slowest (a retention batch, the
# stats' counts on a large table) in well under a second. Ten seconds keeps them working
# on a loaded server and still frees a role from a dead connection long before its
# heartbeat goes stale (30 s).
STATEMENT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5
# A checkout waits for a free connection, or for a new one to connect and log in.
ACQUIRE_TIMEOUT = CONNECT_TIMEOUT + STATEMENT_TIMEOUT
# TCP keepalive on idle pooled connections: a peer gone silent is found in about a
# minute (30 s idle, then 3 probes 10 s apart) instead of the kernel's two hours.
KEEPALIVE = ((socket.TCP_KEEPIDLE, 30), (socket.TCP_KEEPINTVL, 10), (socket.TCP_KEEPCNT, 3))


LOCK_CONFLICTS = (1205, 1213)  # lock wait timeout, deadlock
UNKNOWN_VARIABLE = 1193
# Parses only where SKIP LOCKED exists (MySQL 8.0.1+, MariaDB 10.6+); locks nothing.
# Recent TiDB parses it and silently takes no lock at all, so the version decides there.
SKIP_LOCKED_PROBE = "SELECT 1 FROM DUAL FOR UPDATE SKIP LOCKED"
PROBE_REFUSED = (1064, 1235)  # a syntax error; "doesn't yet support"
SUPPORTED = "eventtrigger needs MySQL 8.0 or later, or MariaDB 10.6 or later"
_VERSION_NUMBER = re.compile(r"(\d+)\.(\d+)")
CONFLICT_ATTEMPTS = 6
CONFLICT_BASE_DELAY = 0.01  # seconds; doubles per attempt, times a jitter in [0.5, 1.5)
T = TypeVar("T")


class DatabaseSetupError(Exception):
    """The database refused us in a way waiting will not fix (TLS, an unsupported server):
    the CLI prints it as `eventtrigger: database: ...` and exits 1."""


def server_refusal(version: str, skip_locked: bool) -> str | None:
    """Why we refuse a server, from its `VERSION()` and whether `SKIP_LOCKED_PROBE` ran;
    None when it will do. Schedulers and workers claim work with `SELECT ... FOR UPDATE
    SKIP LOCKED`: without it two of them take the same work, or every claim fails."""
    lowered = version.lower()
    if "tidb" in lowered:
        # TiDB accepts the syntax (recent versions) but takes no lock, so the probe
        # passing proves nothing there.
        return (
            f"TiDB ({version}) is not supported: it does not lock rows for SELECT ... "
            f"FOR UPDATE SKIP LOCKED, which claiming work relies on; {SUPPORTED}"
        )
    mariadb = "mariadb" in lowered
    # MariaDB's replication-era prefix, as some proxies still report it.
    number = _VERSION_NUMBER.search(version.removeprefix("5.5.5-") if mariadb else version)
    if number is not None:
        found = (int(number[1]), int(number[2]))
        if found < ((10, 6) if mariadb else (8, 0)):
            return (
                f"{'MariaDB' if mariadb else 'MySQL'} {version} is too old: it has no "
                f"SELECT ... FOR UPDATE SKIP LOCKED; {SUPPORTED}"
            )
    if not skip_locked:
        return f"the server ({version}) refuses SELECT ... FOR UPDATE SKIP LOCKED; {SUPPORTED}"
    return None


async def check_server(cursor: Any) -> None:
    """Probe the server on a (tuple) cursor; DatabaseSetupError if we cannot run on it."""
    await cursor.execute("SELECT VERSION()")
    (version,) = await cursor.fetchone()
    try:
        await cursor.execute(SKIP_LOCKED_PROBE)
        await cursor.fetchall()
        skip_locked = True
    except asyncmy.errors.DatabaseError as exc:
        if exc.args[0] not in PROBE_REFUSED:
            raise
        skip_locked = False
    refusal = server_refusal(str(version), skip_locked)
    if refusal is not None:
        raise DatabaseSetupError(refusal)


def client_ssl(settings: DatabaseSettings) -> ssl.SSLContext | None:
    """The TLS context for every connection under `settings` (None: plaintext)."""
    try:
        return ssl_context(settings.tls)
    except (ssl.SSLError, OSError) as exc:  # a PEM file that is not a key or certificate
        raise DatabaseSetupError(f"TLS: cannot load ssl-cert/ssl-key: {exc}") from exc


async def refusing(settings: DatabaseSettings, connecting: Awaitable[T]) -> T:
    """`connecting` (a connect or a pool's first connect), with a TLS refusal turned into
    a DatabaseSetupError that says what to change, instead of a retried OSError."""
    try:
        return await connecting
    except Exception as exc:
        problem = describe_refusal(exc, settings)
        if problem is None:
            raise
        raise DatabaseSetupError(problem) from exc


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, asyncmy.errors.OperationalError) and exc.args[0] in LOCK_CONFLICTS


def conflict_delay(attempt: int, draw: float) -> float:
    """Pause before re-running after the `attempt`-th (1-based) conflict; `draw` in [0, 1).

    Jitter keeps two victims of the same deadlock from colliding again in lockstep.
    """
    return float(CONFLICT_BASE_DELAY * 2 ** (attempt - 1) * (0.5 + draw))


async def retry_conflicts(work: Callable[[], Awaitable[T]], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run a transaction again if InnoDB chose it as a deadlock victim (or a lock wait
    timed out): that only means it lost a race, and the next try sees the winner's result.
    InnoDB has rolled the whole transaction back, so re-running all of `work` is safe.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except asyncmy.errors.OperationalError as exc:
            if not is_lock_conflict(exc) or attempt == attempts:
                raise
            await asyncio.sleep(conflict_delay(attempt, random.random()))
    raise AssertionError("unreachable")


def utc(value: datetime) -> datetime:
    """`value` in UTC, for a DATETIME parameter."""
    return value.astimezone(UTC)


def read_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def read_json(value: str | bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


def write_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _prepare(args: Sequence[Any] | None) -> tuple[Any, ...] | None:
    if args is None:
        return None
    return tuple(utc(a) if isinstance(a, datetime) else a for a in args)


class Tx:
    """One connection inside one transaction (or autocommit, outside one).

    In autocommit mode each statement is its own transaction, so a statement that loses
    a lock conflict is simply run again here; inside a transaction only `Database.run`
    can re-run, since InnoDB rolled back the statements before it too.
    """

    def __init__(
        self,
        cursor: DictCursor,
        *,
        autocommit: bool = False,
        limit: float | None = None,
        secrets: Keyring | None = None,
    ) -> None:
        self._cursor = cursor
        self._autocommit = autocommit
        self._limit = limit  # seconds a statement may wait for the server (None: no bound)
        # Reads and writes the signing-secret columns (EVENTTRIGGER_SECRET_KEY).
        self.secrets = secrets if secrets is not None else Keyring()

    async def _run(self, statement: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            # On expiry the read is cancelled; the driver then closes the connection (its
            # protocol state is unknown), so the pool never hands it out again.
            async with asyncio.timeout(self._limit):
                return await statement()

        return await (retry_conflicts(bounded) if self._autocommit else bounded())

    async def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        """Run a statement; the number of affected rows."""

        async def once() -> int:
            return int(await self._cursor.execute(sql, _prepare(args)))

        return await self._run(once)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """One multi-row statement for `INSERT ... VALUES (%s, ...)` (asyncmy rewrites it)."""
        prepared = [_prepare(r) for r in rows]
        if not prepared:
            return 0

        async def once() -> int:
            return int(await self._cursor.executemany(sql, prepared) or 0)

        return await self._run(once)

    async def fetch_all(self, sql: str, args: Sequence[Any] | None = None) -> list[Row]:
        async def once() -> list[Row]:
            await self._cursor.execute(sql, _prepare(args))
            return list(await self._cursor.fetchall())

        return await self._run(once)

    async def fetch_one(self, sql: str, args: Sequence[Any] | None = None) -> Row | None:
        async def once() -> Row | None:
            await self._cursor.execute(sql, _prepare(args))
            row: Row | None = await self._cursor.fetchone()
            return row

        return await self._run(once)


class Database:
    """The process's one pool. Roles share it; each unit of work takes a connection."""

    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        statement_timeout: float = STATEMENT_TIMEOUT,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._statement_timeout = statement_timeout
        self._acquire_timeout = acquire_timeout
        self._pool: Any = None
        self._ssl: ssl.SSLContext | None = None  # built in `connect`, shared by every connection
        # Connections whose socket already has our keepalive options.
        self._tuned: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def secrets(self) -> Keyring:
        """The keys of the signing-secret columns (EVENTTRIGGER_SECRET_KEY)."""
        return self._settings.secrets

    def _params(self) -> dict[str, Any]:
        s = self._settings
        return {
            "host": s.host,
            "port": s.port,
            "user": s.user,
            "password": str(s.password),
            "database": s.database,
            "autocommit": True,
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT,
            # Bounds the login's reads (a connect to a silent server holds the pool's
            # lock); `_tune` lifts it once the connection is up: the driver wraps every
            # read in `asyncio.wait_for` while it is set, a task per read, and skips its
            # fast path for short results. Statements are bounded per statement instead
            # (`Tx`), with a timer.
            "read_timeout": self._statement_timeout,
            "ssl": self._ssl,
        }

    async def connect(self) -> None:
        self._ssl = client_ssl(self._settings)
        isolation = await self._inspect_server()
        self._pool = await refusing(
            self._settings,
            asyncmy.create_pool(
                minsize=1,
                maxsize=self._settings.pool_size,
                # One statement (asyncmy reads one result): UTC times, no gap locks.
                init_command=f"SET time_zone = '+00:00', {isolation} = 'READ-COMMITTED'",
                pool_recycle=600,
                **self._params(),
            ),
        )
        # Keys that cannot read the stored signing secrets would fail every delivery (and
        # every firing of a rotated trigger): refuse to start instead, saying why.
        from eventtrigger.store.secrets import check_keys

        try:
            await check_keys(self)
        except BaseException:
            await self.close()
            raise

    async def _inspect_server(self) -> str:
        """Refuse a server we cannot run on (`check_server`), then name the session's
        isolation variable: `transaction_isolation` (MySQL 8, MariaDB 11.1+) or
        `tx_isolation` (MariaDB 10.x); the servers we support share no name for it."""
        conn = await refusing(self._settings, asyncmy.connect(**self._params()))
        try:
            async with conn.cursor() as cursor:
                await check_server(cursor)
                try:
                    await cursor.execute("SELECT @@SESSION.transaction_isolation")
                except asyncmy.errors.OperationalError as exc:
                    if exc.args[0] != UNKNOWN_VARIABLE:
                        raise
                    return "SESSION tx_isolation"
            return "SESSION transaction_isolation"
        finally:
            conn.close()

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        """A connection from the pool, waiting at most `acquire_timeout` for it (a
        TimeoutError otherwise); a connection that failed is closed, never pooled again."""
        async with asyncio.timeout(self._acquire_timeout):
            conn = await self._pool.acquire()
        try:
            self._tune(conn)
            yield conn
        except BaseException:
            # After a timeout or a lost connection the protocol state is unknown: the
            # driver has usually closed it already; make sure, so `release` drops it.
            if getattr(conn, "_stream_broken", False):
                conn.close()
            raise
        finally:
            self._pool.release(conn)

    def _tune(self, conn: Any) -> None:
        """Once per connection: TCP keepalive, and the login's read bound lifted."""
        if conn in self._tuned:
            return
        conn._read_timeout = None
        transport = getattr(conn, "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in KEEPALIVE:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
        self._tuned.add(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Tx]:
        """A connection in autocommit mode: each statement commits by itself (and is run
        again if it loses a lock conflict)."""
        async with self._acquire() as conn, conn.cursor(DictCursor) as cursor:
            yield Tx(cursor, autocommit=True, limit=self._statement_timeout, secrets=self.secrets)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN ... COMMIT, or ROLLBACK if the block raises. Prefer `run`, which also
        re-runs the block when it loses a lock conflict."""
        limit = self._statement_timeout
        async with self._acquire() as conn:
            async with asyncio.timeout(limit):
                await conn.begin()
            try:
                async with conn.cursor(DictCursor) as cursor:
                    yield Tx(cursor, limit=limit, secrets=self.secrets)
            except BaseException:
                # A connection lost or timed out is closed already and the server rolls
                # back on its own; a ROLLBACK there would only hide the error behind
                # another one.
                if conn.connected:
                    async with asyncio.timeout(limit):
                        await conn.rollback()
                raise
            async with asyncio.timeout(limit):
                await conn.commit()

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """`work(tx)` in one transaction, run again (bounded, with jitter) when it loses a
        deadlock or a lock wait times out. `work` may run more than once, so it must only
        touch the database through `tx` (or compute what it needs again)."""

        async def once() -> T:
            async with self.transaction() as tx:
                return await work(tx)

        return await retry_conflicts(once)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Tx]:
        """A read-only transaction whose reads all see one instant (REPEATABLE READ with a
        consistent snapshot taken at once), for figures read from several tables: a move
        between the hot table and the archive then counts once, never twice or not at all.
        """
        limit = self._statement_timeout
        async with self._acquire() as conn, conn.cursor(DictCursor) as cursor:
            async with asyncio.timeout(limit):
                await cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                yield Tx(cursor, limit=limit, secrets=self.secrets)
            finally:
                if conn.connected:  # read only: nothing to keep
                    async with asyncio.timeout(limit):
                        await conn.rollback()

    async def ping(self, limit: float | None = None) -> float:
        """Round-trip one query; the latency in milliseconds. With `limit` (seconds), a
        TimeoutError once it has passed (the connection it was using is dropped)."""
        started = time.perf_counter()
        async with asyncio.timeout(limit):
            async with self.connection() as tx:
                await tx.fetch_one("SELECT 1 AS ok")
        return (time.perf_counter() - started) * 1000
