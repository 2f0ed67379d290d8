"""`eventtrigger migrate`: create the database if missing, then apply `sql/NNNN_*.sql`.

The migrations live in the repository's top-level `sql/`. The wheel carries them inside
the package (`eventtrigger/sql/`, see pyproject's force-include), so a normal install (a
wheel, the container image) finds them there; a source checkout or an editable install
finds the top-level directory.

Safe from several containers at once: a named lock (GET_LOCK) serialises runners, and the
`schema_migrations` table records what is applied, so a second run is a no-op. MySQL
commits DDL implicitly, so a file is recorded right after its last statement succeeds.
Files that only create tables use IF NOT EXISTS and can simply run again if interrupted;
MySQL 8.4 has no `ADD COLUMN IF NOT EXISTS`, so a file of several ALTERs interrupted
half-way (a full disk, say) needs its applied part undone by hand before `migrate` again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncmy

from eventtrigger.config import DatabaseSettings
from eventtrigger.store.db import check_server, client_ssl, refusing


def _migrations_dir() -> Path:
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


MIGRATIONS_DIR = _migrations_dir()
LOCK_NAME = "eventtrigger.migrate"
_FILE = re.compile(r"^(\d{4})_([\w-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: migration files are named NNNN_description.sql")
        migrations.append(
            Migration(int(match[1]), match[2], tuple(split_statements(path.read_text())))
        )
    if not migrations:
        # An install without its SQL must fail loudly, not report "up to date".
        raise FileNotFoundError(f"no migration files in {directory}")
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError("two migration files share a version number")
    return migrations


def split_statements(text: str) -> list[str]:
    """Split on `;` at the end of a line, dropping `--` comment lines (no procedures here)."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]


async def migrate(settings: DatabaseSettings, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply what is missing; the versions applied by this call."""
    migrations = discover(directory)
    # The same TLS as the pool's connections, and the same refusals: a certificate that
    # does not verify or a server without SKIP LOCKED stops `migrate` with one line too.
    connecting = asyncmy.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=str(settings.password),
        autocommit=True,
        charset="utf8mb4",
        connect_timeout=10,
        # A schema change on a large table may take minutes, so not the pool's 10 s; but
        # bounded, so a half-open connection after a failover cannot hang it for good.
        read_timeout=3600,
        ssl=client_ssl(settings),
    )
    conn = await refusing(settings, connecting)
    applied_now: list[int] = []
    try:
        async with conn.cursor() as cur:
            await check_server(cur)
            await cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{settings.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            await cur.execute(f"USE `{settings.database}`")
            await cur.execute("SET time_zone = '+00:00'")
            await cur.execute("SELECT GET_LOCK(%s, 120)", (LOCK_NAME,))
            (locked,) = await cur.fetchone()
            if locked != 1:
                raise RuntimeError(f"could not take the migration lock {LOCK_NAME!r} in 120 s")
            try:
                await cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INT UNSIGNED NOT NULL PRIMARY KEY,"
                    " name VARCHAR(200) NOT NULL,"
                    " applied_at DATETIME(6) NOT NULL)"
                )
                await cur.execute("SELECT version FROM schema_migrations")
                done = {int(row[0]) for row in await cur.fetchall()}
                for migration in migrations:
                    if migration.version in done:
                        continue
                    for statement in migration.statements:
                        await cur.execute(statement)
                    await cur.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, datetime.now(UTC)),
                    )
                    applied_now.append(migration.version)
            finally:
                await cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
    finally:
        await conn.ensure_closed()
    return applied_now
