"""The database pool and a thin transaction helper over asyncmy.

Times cross this boundary as aware UTC datetimes: we pass UTC values (asyncmy writes the
wall-clock fields and ignores tzinfo, so they must already be UTC) and stamp UTC on what
we read, since DATETIME columns hold naive UTC. JSON columns come back as text on MariaDB
and are decoded here, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncmy
import orjson
from asyncmy.cursors import DictCursor

from eventtrigger.config import DatabaseSettings

Row = dict[str, Any]

# A lost connection or a server that is not there yet; worth a retry by the caller.
TRANSIENT_ERRORS = (OSError, asyncmy.errors.OperationalError, asyncmy.errors.InterfaceError)
DUPLICATE_KEY = 1062


LOCK_CONFLICTS = (1205, 1213)  # lock wait timeout, deadlock
T = TypeVar("T")


async def retry_conflicts(work: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run a transaction again if InnoDB chose it as a deadlock victim (or a lock wait
    timed out): that only means it lost a race, and the next try sees the winner's result.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except asyncmy.errors.OperationalError as exc:
            if exc.args[0] not in LOCK_CONFLICTS or attempt == attempts:
                raise
            await asyncio.sleep(0.02 * attempt)
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
    """One connection inside one transaction (or autocommit, outside one)."""

    def __init__(self, cursor: DictCursor) -> None:
        self._cursor = cursor

    async def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        """Run a statement; the number of affected rows."""
        return int(await self._cursor.execute(sql, _prepare(args)))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """One multi-row statement for `INSERT ... VALUES (%s, ...)` (asyncmy rewrites it)."""
        prepared = [_prepare(r) for r in rows]
        if not prepared:
            return 0
        return int(await self._cursor.executemany(sql, prepared) or 0)

    async def fetch_all(self, sql: str, args: Sequence[Any] | None = None) -> list[Row]:
        await self._cursor.execute(sql, _prepare(args))
        return list(await self._cursor.fetchall())

    async def fetch_one(self, sql: str, args: Sequence[Any] | None = None) -> Row | None:
        await self._cursor.execute(sql, _prepare(args))
        row: Row | None = await self._cursor.fetchone()
        return row


class Database:
    """The process's one pool. Roles share it; each unit of work takes a connection."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self._settings = settings
        self._pool: Any = None

    async def connect(self) -> None:
        s = self._settings
        self._pool = await asyncmy.create_pool(
            minsize=1,
            maxsize=s.pool_size,
            host=s.host,
            port=s.port,
            user=s.user,
            password=str(s.password),
            database=s.database,
            autocommit=True,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'",
            connect_timeout=5,
            pool_recycle=600,
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Tx]:
        """A connection in autocommit mode: each statement commits by itself."""
        async with self._pool.acquire() as conn, conn.cursor(DictCursor) as cursor:
            yield Tx(cursor)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN ... COMMIT, or ROLLBACK if the block raises."""
        async with self._pool.acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor(DictCursor) as cursor:
                    yield Tx(cursor)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def ping(self) -> float:
        """Round-trip one query; the latency in milliseconds."""
        started = time.perf_counter()
        async with self.connection() as tx:
            await tx.fetch_one("SELECT 1 AS ok")
        return (time.perf_counter() - started) * 1000
