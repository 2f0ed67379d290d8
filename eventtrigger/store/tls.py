"""TLS to the database: the one place an `ssl.SSLContext` is built from `DatabaseTls`, and
the words for a connection the TLS settings (or the server's demand for them) refused.

Every database connection (the pool, `migrate`'s own connection, the health check, which
uses the pool) gets its context from `ssl_context`. The modes mean what they mean to
MySQL's own client:

- DISABLED: plaintext.
- REQUIRED: encrypted, the server's certificate is not checked (a man in the middle
  could read the traffic; it stops passive eavesdropping only).
- VERIFY_CA: encrypted, the certificate chain checked against ssl-ca (or the system's
  CAs without one); the host name is not checked.
- VERIFY_IDENTITY: VERIFY_CA, and the certificate must name the host we connect to.

There is no PREFERRED (config.py refuses it): asyncmy cannot fall back to plaintext when
the server does not offer TLS, and a silent fallback is what PREFERRED would be for.

`describe_refusal` is pure: an exception raised by a connect, and the settings it was
made with, in; the sentence for the operator out, or None for a failure that waiting may
cure (a server still starting, a network blip). A refusal (a certificate that does not
verify, a server that demands TLS, an access denied) does not go away by retrying.
"""

from __future__ import annotations

import ssl

from eventtrigger.config import DatabaseSettings, DatabaseTls

URL_VARIABLE = "EVENTTRIGGER_DATABASE_URL"
# The server refuses a login without TLS: MySQL's ER_SECURE_TRANSPORT_REQUIRED, which
# MariaDB (require_secure_transport, 10.5+) answers with as well.
SECURE_TRANSPORT_REQUIRED = 3159
# Wrong credentials; also MariaDB's answer to a plaintext login it requires TLS for, and
# any server's to a REQUIRE X509 user without a client certificate.
ACCESS_DENIED = 1045
# OpenSSL's verify results for a certificate that does not name the host we asked for.
_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def ssl_context(tls: DatabaseTls) -> ssl.SSLContext | None:
    """The context for every connection under `tls`; None for DISABLED (plaintext)."""
    if tls.mode == "DISABLED":
        return None
    if tls.mode == "REQUIRED":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        # Without ssl-ca the system's CAs: a managed server's certificate usually chains
        # to a public CA (or the provider ships its CA into the image).
        context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
        context.check_hostname = tls.mode == "VERIFY_IDENTITY"
        context.verify_mode = ssl.CERT_REQUIRED
    # TLS 1.0/1.1 are refused by current OpenSSL defaults anyway; say so explicitly.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    return context


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from (asyncmy wraps an OSError in OperationalError)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_refusal(exc: BaseException, settings: DatabaseSettings) -> str | None:
    """What to tell the operator when the server or TLS refused a connect, else None.

    A refusal does not go away by waiting (unlike a server that is still starting): the
    caller stops the start with the sentence instead of retrying.
    """
    tls = settings.tls
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or str(cause)
            if cause.verify_code in _NAME_MISMATCH:
                hint = (
                    f"the server's certificate does not name {settings.host!r}: connect with "
                    "a host name it holds, or use ssl-mode=VERIFY_CA to check the chain only"
                )
            elif tls.ca is not None:
                hint = f"the server's certificate is not signed by ssl-ca={tls.ca}"
            else:
                hint = (
                    "the server's certificate is not signed by a CA this system trusts: "
                    "give its CA with ssl-ca=/path/ca.pem"
                )
            return f"TLS: certificate verify failed ({detail}); {hint} in {URL_VARIABLE}"
        if isinstance(cause, ssl.SSLError):
            detail = cause.reason or str(cause)
            return (
                f"TLS: handshake with {settings.host}:{settings.port} failed ({detail}); "
                f"does the server accept TLS? (ssl-mode={tls.mode} in {URL_VARIABLE})"
            )
        code = _mysql_code(cause)
        if code == SECURE_TRANSPORT_REQUIRED or "insecure transport" in str(cause).lower():
            return f"the server requires TLS ({_mysql_message(cause)}): {_ADD_TLS}"
        if code == ACCESS_DENIED:
            return f"{_mysql_message(cause)}{_access_hint(tls)}"
    return None


_ADD_TLS = f"add ?ssl-mode=REQUIRED or ?ssl-mode=VERIFY_IDENTITY to {URL_VARIABLE}"


def _access_hint(tls: DatabaseTls) -> str:
    """What else an access denied may mean, given how we connected."""
    if tls.mode == "DISABLED":
        # MariaDB answers a plaintext login under require_secure_transport this way,
        # not with MySQL's 3159, so the two causes cannot be told apart from here.
        return f"; wrong user or password, or the server requires TLS: then {_ADD_TLS}"
    if tls.cert is None:
        return (
            "; wrong user or password, or the user is created REQUIRE X509 / SUBJECT: then "
            f"add its client certificate with ssl-cert=...&ssl-key=... to {URL_VARIABLE}"
        )
    return ""


def _mysql_code(exc: BaseException) -> int | None:
    """The server's error number, for asyncmy's errors (`args[0]`); None otherwise."""
    if exc.args and isinstance(exc.args[0], int) and not isinstance(exc, OSError):
        return exc.args[0]
    return None


def _mysql_message(exc: BaseException) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)
