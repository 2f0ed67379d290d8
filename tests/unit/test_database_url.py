"""EVENTTRIGGER_DATABASE_URL's TLS options, the TLS context built from them, the words
for a TLS refusal, and which servers we refuse to run on (all without a server)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import asyncmy
import pytest

from eventtrigger.config import DatabaseSettings, DatabaseTls, Secret, SettingsError, load_settings
from eventtrigger.store.db import server_refusal
from eventtrigger.store.tls import describe_refusal, ssl_context

BASE = "mysql://app:s3cret@db.example.com:3306/eventtrigger"


def database(url: str) -> DatabaseSettings:
    return load_settings({"EVENTTRIGGER_DATABASE_URL": url}, env_file=None).database


def refused(url: str) -> str:
    with pytest.raises(SettingsError) as caught:
        database(url)
    assert caught.value.variable == "EVENTTRIGGER_DATABASE_URL"
    assert "s3cret" not in str(caught.value)  # the message never shows the password
    return str(caught.value)


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    """Files named as a CA, a client certificate and its key (config only checks that
    they are readable files; `ssl_context` tests make real ones)."""
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("placeholder\n")
    return files


def test_without_options_the_connection_stays_plaintext() -> None:
    assert database(BASE).tls == DatabaseTls(mode="DISABLED")


@pytest.mark.parametrize("mode", ["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"])
def test_every_mode_is_accepted(mode: str) -> None:
    assert database(f"{BASE}?ssl-mode={mode}").tls.mode == mode


@pytest.mark.parametrize("written", ["verify_identity", "Verify_Identity", "VERIFY_IDENTITY"])
def test_the_mode_is_case_insensitive(written: str) -> None:
    assert database(f"{BASE}?ssl-mode={written}").tls.mode == "VERIFY_IDENTITY"


def test_every_file_option_is_read(pems: dict[str, Path]) -> None:
    tls = database(
        f"{BASE}?ssl-mode=VERIFY_CA&ssl-ca={pems['ca']}&ssl-cert={pems['cert']}"
        f"&ssl-key={pems['key']}"
    ).tls
    assert tls == DatabaseTls(mode="VERIFY_CA", ca=pems["ca"], cert=pems["cert"], key=pems["key"])


def test_a_percent_encoded_path_is_decoded(tmp_path: Path) -> None:
    ca = tmp_path / "a b+c.pem"
    ca.write_text("placeholder\n")
    encoded = str(ca).replace(" ", "%20").replace("+", "%2B")
    assert database(f"{BASE}?ssl-ca={encoded}").tls.ca == ca


def test_ssl_ca_without_a_mode_verifies_the_identity(pems: dict[str, Path]) -> None:
    assert database(f"{BASE}?ssl-ca={pems['ca']}").tls == DatabaseTls(
        mode="VERIFY_IDENTITY", ca=pems["ca"]
    )


def test_a_client_certificate_without_a_mode_verifies_the_identity(
    pems: dict[str, Path],
) -> None:
    tls = database(f"{BASE}?ssl-cert={pems['cert']}&ssl-key={pems['key']}").tls
    assert tls.mode == "VERIFY_IDENTITY" and tls.ca is None


def test_required_needs_no_ca_and_takes_a_client_certificate(pems: dict[str, Path]) -> None:
    tls = database(f"{BASE}?ssl-mode=REQUIRED&ssl-cert={pems['cert']}&ssl-key={pems['key']}").tls
    assert tls == DatabaseTls(mode="REQUIRED", cert=pems["cert"], key=pems["key"])


def test_preferred_is_refused_with_the_reason() -> None:
    message = refused(f"{BASE}?ssl-mode=PREFERRED")
    assert "cannot fall back to plaintext" in message
    assert "REQUIRED or DISABLED" in message


def test_an_unknown_mode_is_refused() -> None:
    message = refused(f"{BASE}?ssl-mode=ON")
    assert "'ON'" in message and "VERIFY_IDENTITY" in message


@pytest.mark.parametrize("option", ["ssl_mode=REQUIRED", "charset=utf8mb4", "sslmode=require"])
def test_an_unknown_option_is_refused_by_name(option: str) -> None:
    message = refused(f"{BASE}?{option}")
    assert repr(option.split("=")[0]) in message


def test_an_option_given_twice_is_refused() -> None:
    assert "ssl-mode is given twice" in refused(f"{BASE}?ssl-mode=REQUIRED&ssl-mode=DISABLED")


def test_an_empty_value_is_refused() -> None:
    assert "ssl-ca needs a value" in refused(f"{BASE}?ssl-ca=")


@pytest.mark.parametrize("option", ["ssl-ca", "ssl-cert", "ssl-key"])
def test_a_missing_file_is_refused_naming_the_option(option: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    message = refused(f"{BASE}?ssl-mode=VERIFY_CA&{option}={missing}")
    assert f"{option}: '{missing}' is not a readable file" in message


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    assert "ssl-ca" in refused(f"{BASE}?ssl-ca={tmp_path}")


def test_a_certificate_without_its_key_is_refused(pems: dict[str, Path]) -> None:
    assert "ssl-cert needs ssl-key" in refused(f"{BASE}?ssl-mode=REQUIRED&ssl-cert={pems['cert']}")


def test_a_key_without_its_certificate_is_refused(pems: dict[str, Path]) -> None:
    assert "ssl-key needs ssl-cert" in refused(f"{BASE}?ssl-mode=REQUIRED&ssl-key={pems['key']}")


def test_files_with_disabled_are_refused(pems: dict[str, Path]) -> None:
    assert "ssl-ca needs an ssl-mode other than DISABLED" in refused(
        f"{BASE}?ssl-mode=DISABLED&ssl-ca={pems['ca']}"
    )


def test_a_ca_with_required_is_refused_as_it_would_be_ignored(pems: dict[str, Path]) -> None:
    message = refused(f"{BASE}?ssl-mode=REQUIRED&ssl-ca={pems['ca']}")
    assert "VERIFY_CA or VERIFY_IDENTITY" in message


def test_the_password_stays_masked_beside_the_tls_options(pems: dict[str, Path]) -> None:
    settings = database(f"{BASE}?ssl-ca={pems['ca']}")
    assert str(settings.password) == "s3cret"
    assert isinstance(settings.password, Secret)
    assert "s3cret" not in repr(settings)


# The TLS context every connection gets.


@pytest.fixture(scope="module")
def real_pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate and its key, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    base = tmp_path_factory.mktemp("pems")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=client", "-keyout", "key.pem", "-out", "cert.pem"],
        cwd=base, check=True, capture_output=True,
    )  # fmt: skip
    return {"cert": base / "cert.pem", "key": base / "key.pem"}


def test_disabled_builds_no_context() -> None:
    assert ssl_context(DatabaseTls(mode="DISABLED")) is None


def test_required_encrypts_without_checking_the_certificate() -> None:
    context = ssl_context(DatabaseTls(mode="REQUIRED"))
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_verify_ca_checks_the_chain_but_not_the_host_name(real_pems: dict[str, Path]) -> None:
    context = ssl_context(DatabaseTls(mode="VERIFY_CA", ca=real_pems["cert"]))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "client"),),)]


def test_verify_identity_checks_the_chain_and_the_host_name() -> None:
    context = ssl_context(DatabaseTls(mode="VERIFY_IDENTITY"))  # the system's CAs
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_client_certificate_is_loaded(real_pems: dict[str, Path]) -> None:
    tls = DatabaseTls(mode="REQUIRED", cert=real_pems["cert"], key=real_pems["key"])
    assert ssl_context(tls) is not None
    with pytest.raises(ssl.SSLError):  # the certificate given as its own key: not loaded
        ssl_context(DatabaseTls(mode="REQUIRED", cert=real_pems["cert"], key=real_pems["cert"]))


# The words for a refused connection.

SETTINGS = DatabaseSettings(
    host="db.example.com", port=3306, user="app", password=Secret("s3cret"),
    database="eventtrigger", pool_size=1, tls=DatabaseTls(mode="VERIFY_IDENTITY"),
)  # fmt: skip


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")
    error.verify_code, error.verify_message = code, message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


def wrapped(cause: BaseException) -> asyncmy.errors.OperationalError:
    """As asyncmy raises it: an OperationalError from the OSError."""
    try:
        raise asyncmy.errors.OperationalError(2003, "Can't connect") from cause
    except asyncmy.errors.OperationalError as exc:
        return exc


def test_an_unknown_ca_says_certificate_verify_failed_and_names_the_ca_option() -> None:
    message = describe_refusal(wrapped(verify_error(20, "unable to get local issuer")), SETTINGS)
    assert message is not None
    assert message.startswith("TLS: certificate verify failed (unable to get local issuer)")
    assert "ssl-ca=" in message


def test_a_ca_that_did_not_sign_names_the_given_ca(tmp_path: Path) -> None:
    settings = replace(SETTINGS, tls=DatabaseTls("VERIFY_CA", tmp_path))
    message = describe_refusal(wrapped(verify_error(19, "self-signed certificate")), settings)
    assert message is not None and f"not signed by ssl-ca={tmp_path}" in message


@pytest.mark.parametrize("code", [62, 64])
def test_a_host_name_mismatch_names_the_host_and_points_to_verify_ca(code: int) -> None:
    message = describe_refusal(wrapped(verify_error(code, "Hostname mismatch")), SETTINGS)
    assert message is not None and "certificate verify failed (Hostname mismatch)" in message
    assert "'db.example.com'" in message and "ssl-mode=VERIFY_CA" in message


def test_a_server_without_tls_is_a_failed_handshake() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    message = describe_refusal(wrapped(error), SETTINGS)
    assert message is not None and "handshake with db.example.com:3306 failed" in message


def test_a_server_that_requires_tls_gets_the_hint() -> None:
    error = asyncmy.errors.OperationalError(
        3159,
        "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
    )
    message = describe_refusal(error, SETTINGS)
    assert message is not None
    assert "insecure transport" in message
    assert (
        "add ?ssl-mode=REQUIRED or ?ssl-mode=VERIFY_IDENTITY to EVENTTRIGGER_DATABASE_URL"
        in message
    )


DENIED = asyncmy.errors.OperationalError(
    1045, "Access denied for user 'app'@'10.0.0.5' (using password: YES)"
)


def test_access_denied_in_plaintext_says_the_server_may_require_tls() -> None:
    # MariaDB answers a plaintext login under require_secure_transport with 1045.
    message = describe_refusal(DENIED, replace(SETTINGS, tls=DatabaseTls()))
    assert message is not None and message.startswith("Access denied for user 'app'")
    assert "or the server requires TLS: then add ?ssl-mode=REQUIRED" in message


def test_access_denied_over_tls_without_a_certificate_mentions_x509() -> None:
    message = describe_refusal(DENIED, SETTINGS)
    assert message is not None and "REQUIRE X509" in message and "ssl-cert=" in message


def test_access_denied_with_a_certificate_is_just_access_denied(tmp_path: Path) -> None:
    tls = DatabaseTls("VERIFY_IDENTITY", cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    assert describe_refusal(DENIED, replace(SETTINGS, tls=tls)) == str(DENIED.args[1])


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncmy.errors.OperationalError(2013, "Lost connection to server during query"),
        TimeoutError(),
    ],
)
def test_other_failures_are_not_tls_refusals(error: BaseException) -> None:
    assert describe_refusal(wrapped(error), SETTINGS) is None
    assert describe_refusal(error, SETTINGS) is None


# Which servers we run on.


@pytest.mark.parametrize(
    "version",
    [
        "8.4.3",
        "8.0.36",
        "8.0.36-28",
        "10.11.6-MariaDB-0+deb12u1",
        "10.6.18-MariaDB",
        "11.4.2-MariaDB",
    ],
)
def test_supported_servers_with_skip_locked_are_accepted(version: str) -> None:
    assert server_refusal(version, skip_locked=True) is None


@pytest.mark.parametrize(
    "version", ["8.0.11-TiDB-v7.5.1", "8.0.11-TiDB-v8.5.6", "5.7.25-TiDB-v6.5.0"]
)
@pytest.mark.parametrize("skip_locked", [True, False])
def test_tidb_is_refused_even_when_it_parses_skip_locked(version: str, skip_locked: bool) -> None:
    refusal = server_refusal(version, skip_locked)
    assert refusal is not None and refusal.startswith(f"TiDB ({version}) is not supported")


@pytest.mark.parametrize(
    ("version", "name"),
    [
        ("MySQL 5.7.44", "MySQL"),
        ("5.7.44-log", "MySQL"),
        ("5.7.mysql_aurora.2.11.2", "MySQL"),
        ("10.5.23-MariaDB", "MariaDB"),
        ("5.5.5-10.5.23-MariaDB", "MariaDB"),
        ("10.3.39-MariaDB-0+deb10u1", "MariaDB"),
    ],
)
def test_servers_too_old_for_skip_locked_are_refused(version: str, name: str) -> None:
    refusal = server_refusal(version, skip_locked=True)
    assert refusal is not None and refusal.startswith(f"{name} {version} is too old")
    assert "MySQL 8.0 or later, or MariaDB 10.6 or later" in refusal


def test_a_server_that_rejects_the_probe_is_refused() -> None:
    refusal = server_refusal("8.0.36", skip_locked=False)
    assert refusal is not None and "refuses SELECT ... FOR UPDATE SKIP LOCKED" in refusal


def test_an_unknown_version_string_is_judged_by_the_probe() -> None:
    assert server_refusal("SomeFork", skip_locked=True) is None
    assert server_refusal("SomeFork", skip_locked=False) is not None
