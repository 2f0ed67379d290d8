"""A managed-style MySQL: TLS required by the server, our own CA, a user that must show a
client certificate.

The test starts its own `mariadbd` (tests/fault/conftest.py's MariaDB, started with
`require_secure_transport=ON` and `ssl_ca`/`ssl_cert`/`ssl_key`): a CA made with
`openssl`, a server certificate it signs whose only name is DNS:localhost, a client
certificate for a user created `REQUIRE X509`, and a second, unrelated CA. Against it:
`eventtrigger migrate` and the pool connect with VERIFY_IDENTITY (and the session really
is encrypted); REQUIRED connects without a CA; VERIFY_CA accepts the certificate for a
host name it does not hold while VERIFY_IDENTITY refuses it; a wrong CA and a plaintext
login are refused with one line saying what to change, no traceback, and `run` stops at
once on them instead of retrying; the X509 user gets in only with its certificate.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncmy
import pytest

from eventtrigger.config import load_settings
from eventtrigger.store.db import Database, DatabaseSetupError
from tests.conftest import TABLES
from tests.fault.conftest import MariaDB, record_result
from tests.process import free_port

pytestmark = pytest.mark.fault

DATABASE = "eventtrigger_tls"
APP_USER, APP_PASSWORD = "app", "app-pw-7d1f"
X509_USER, X509_PASSWORD = "mtls", "mtls-pw-93ce"
CLI_LIMIT = 30.0  # seconds a refused command may take; the retry loop would take 60+


def _openssl(base: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=base, check=True, capture_output=True)


def _ca(base: Path, name: str, subject: str) -> None:
    _openssl(base, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={subject}", "-keyout", f"{name}.key", "-out", f"{name}.pem")  # fmt: skip


def _signed(base: Path, name: str, subject: str, extensions: str) -> None:
    _openssl(base, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={subject}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
    (base / f"{name}.cnf").write_text(extensions)
    _openssl(base, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.cnf", "-out", f"{name}.pem")  # fmt: skip


def make_certificates(base: Path) -> None:
    """ca.pem signs server.pem (named only DNS:localhost, so 127.0.0.1 is not its name)
    and client.pem; other-ca.pem signs nothing we use."""
    _ca(base, "ca", "eventtrigger test CA")
    _signed(base, "server", "localhost", "subjectAltName=DNS:localhost\n")
    _signed(base, "client", X509_USER, "extendedKeyUsage=clientAuth\n")
    _ca(base, "other-ca", "another CA")


class TlsMariaDB(MariaDB):
    """The conftest server with TLS on and plaintext TCP logins refused; root logs in
    over the unix socket, which require_secure_transport counts as secure."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.certs = base / "certs"
        self.socket = base / "d.sock"

    def start(self) -> None:
        assert self.mariadbd is not None
        self.proc = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--user={os.environ.get('USER') or 'root'}",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.base / 'd.pid'}",
                f"--log-error={self.log}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=2",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                f"--ssl-ca={self.certs / 'ca.pem'}",
                f"--ssl-cert={self.certs / 'server.pem'}",
                f"--ssl-key={self.certs / 'server.key'}",
                "--require-secure-transport=ON",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def root(self) -> Any:
        return await asyncmy.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = await self.root()
                conn.close()
                return
            except Exception:  # any failure means "not yet"
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements as root; the last one's rows."""
        conn = await self.root()
        try:
            async with conn.cursor() as cur:
                for statement in statements:
                    await cur.execute(statement)
                return list(await cur.fetchall())
        finally:
            conn.close()

    def url(self, host: str = "localhost", user: str = APP_USER, password: str = APP_PASSWORD,
            **options: str | Path) -> str:  # fmt: skip
        query = "&".join(f"{k.replace('_', '-')}={v}" for k, v in options.items())
        return f"mysql://{user}:{password}@{host}:{self.port}/{DATABASE}" + (
            f"?{query}" if query else ""
        )


@pytest.fixture(scope="module")
async def tls_db() -> AsyncIterator[TlsMariaDB]:
    # Under /tmp, not pytest's tmp_path: a unix socket path must stay under 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="ettls-"))
    server = TlsMariaDB(base)
    why = server.missing() or (None if shutil.which("openssl") else "no openssl")
    if why:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"the TLS database test starts its own server: {why}")
    try:
        server.certs.mkdir()
        await asyncio.gather(
            asyncio.to_thread(make_certificates, server.certs), asyncio.to_thread(server.install)
        )
        server.start()
        await server.wait_ready()
        await server.sql(
            f"CREATE DATABASE {DATABASE}",
            f"CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'",
            f"GRANT ALL ON *.* TO '{APP_USER}'@'%'",
            f"CREATE USER '{X509_USER}'@'%' IDENTIFIED BY '{X509_PASSWORD}' REQUIRE X509",
            f"GRANT ALL ON {DATABASE}.* TO '{X509_USER}'@'%'",
        )
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def eventtrigger(url: str, cwd: Path, *args: str) -> tuple[int, str, str, float]:
    """`eventtrigger <args>` with EVENTTRIGGER_DATABASE_URL=url: status, stdout, stderr and
    seconds taken (killed, and the test failed, past CLI_LIMIT)."""
    env = {
        **os.environ,
        "EVENTTRIGGER_DATABASE_URL": url,
        "EVENTTRIGGER_HTTP_HOST": "127.0.0.1",
        "EVENTTRIGGER_HTTP_PORT": str(free_port()),
        "EVENTTRIGGER_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "eventtrigger.cli", *args],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_LIMIT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"eventtrigger {' '.join(args)} still running after {CLI_LIMIT}s: {exc}")
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


async def cipher_through_pool(url: str) -> str:
    """Open the process pool with `url`, run a query; the session's TLS cipher."""
    database = Database(load_settings({"EVENTTRIGGER_DATABASE_URL": url}, env_file=None).database)
    await database.connect()
    try:
        async with database.connection() as tx:
            row = await tx.fetch_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    finally:
        await database.close()
    assert row is not None
    return str(row["Value"])


def assert_one_clear_line(status: int, stderr: str, *expected: str) -> None:
    assert status == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("eventtrigger: database: "), stderr
    for text in expected:
        assert text in stderr, stderr


async def test_verify_identity_migrates_and_pools_over_tls(
    tls_db: TlsMariaDB, tmp_path: Path
) -> None:
    url = tls_db.url(ssl_mode="VERIFY_IDENTITY", ssl_ca=tls_db.certs / "ca.pem")
    status, out, err, _ = await asyncio.to_thread(eventtrigger, url, tmp_path, "migrate")
    assert status == 0, err
    assert "migrations applied" in out
    rows = await tls_db.sql(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{DATABASE}'"
    )
    assert set(TABLES) <= {name for (name,) in rows}
    cipher = await cipher_through_pool(url)
    assert cipher, "the pool's session is not encrypted"
    # ssl-ca alone means VERIFY_IDENTITY: the same URL without ssl-mode works the same.
    assert await cipher_through_pool(tls_db.url(ssl_ca=tls_db.certs / "ca.pem"))
    record_result(scenario="db-tls-verify-identity", cipher=cipher)


async def test_required_encrypts_without_a_ca(tls_db: TlsMariaDB) -> None:
    assert await cipher_through_pool(tls_db.url(ssl_mode="required"))


async def test_a_certificate_from_another_ca_is_a_clear_refusal(
    tls_db: TlsMariaDB, tmp_path: Path
) -> None:
    url = tls_db.url(ssl_mode="VERIFY_CA", ssl_ca=tls_db.certs / "other-ca.pem")
    status, _, err, took = await asyncio.to_thread(eventtrigger, url, tmp_path, "migrate")
    assert_one_clear_line(
        status, err, "TLS: certificate verify failed", f"ssl-ca={tls_db.certs / 'other-ca.pem'}"
    )
    # `run` stops at once too, instead of waiting a minute for a server "not up yet".
    status, _, err, took = await asyncio.to_thread(
        eventtrigger, url, tmp_path, "run", "--roles=retention"
    )
    assert_one_clear_line(status, err, "TLS: certificate verify failed")
    assert took < 15, took
    record_result(scenario="db-tls-wrong-ca", run_refused_after_s=round(took, 1))


async def test_a_host_name_the_certificate_does_not_hold(
    tls_db: TlsMariaDB, tmp_path: Path
) -> None:
    ca = tls_db.certs / "ca.pem"
    url = tls_db.url(host="127.0.0.1", ssl_mode="VERIFY_IDENTITY", ssl_ca=ca)
    status, _, err, _ = await asyncio.to_thread(eventtrigger, url, tmp_path, "migrate")
    assert_one_clear_line(
        status, err, "TLS: certificate verify failed", "'127.0.0.1'", "ssl-mode=VERIFY_CA"
    )
    # VERIFY_CA checks the chain only: the same host connects.
    assert await cipher_through_pool(tls_db.url(host="127.0.0.1", ssl_mode="VERIFY_CA", ssl_ca=ca))


async def test_a_plaintext_login_is_refused_by_the_server_with_a_hint(
    tls_db: TlsMariaDB, tmp_path: Path
) -> None:
    url = tls_db.url()  # no ssl-* option: DISABLED
    status, _, err, _ = await asyncio.to_thread(eventtrigger, url, tmp_path, "migrate")
    # MySQL answers 3159 "insecure transport"; MariaDB (this server) an access denied.
    assert_one_clear_line(
        status, err, "Access denied for user 'app'", "the server requires TLS",
        "add ?ssl-mode=REQUIRED or ?ssl-mode=VERIFY_IDENTITY to EVENTTRIGGER_DATABASE_URL",
    )  # fmt: skip
    status, _, err, took = await asyncio.to_thread(
        eventtrigger, url, tmp_path, "run", "--roles=retention"
    )
    assert_one_clear_line(status, err, "the server requires TLS")
    assert took < 15, took
    record_result(scenario="db-tls-plaintext-refused", run_refused_after_s=round(took, 1))


async def test_a_require_x509_user_gets_in_only_with_its_certificate(tls_db: TlsMariaDB) -> None:
    ca = tls_db.certs / "ca.pem"
    with_certificate = tls_db.url(
        user=X509_USER, password=X509_PASSWORD, ssl_ca=ca,
        ssl_cert=tls_db.certs / "client.pem", ssl_key=tls_db.certs / "client.key",
    )  # fmt: skip
    assert await cipher_through_pool(with_certificate)
    without = tls_db.url(user=X509_USER, password=X509_PASSWORD, ssl_ca=ca)
    with pytest.raises(DatabaseSetupError) as refused:
        await cipher_through_pool(without)
    # Encrypted, but no certificate: access denied, and the message says what may be missing.
    assert f"Access denied for user '{X509_USER}'" in str(refused.value)
    assert "REQUIRE X509" in str(refused.value)
