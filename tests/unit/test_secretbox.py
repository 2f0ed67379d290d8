"""Signing secrets encrypted at rest (pure): EVENTTRIGGER_SECRET_KEY's parsing, AES-256-GCM
round trips, and every way a stored value must fail to decrypt (no key, an unknown key
id, a wrong key, an altered ciphertext, a ciphertext moved to another row or field)."""

from __future__ import annotations

import base64
import os

import pytest

from eventtrigger.config import SettingsError, load_settings
from eventtrigger.domain.secretbox import (
    PREFIX,
    Keyring,
    KeyringError,
    SecretKeyError,
    is_sealed,
    key_id_of,
    parse_keyring,
)
from eventtrigger.ids import new_signing_secret
from tests.conftest import test_environ as environ  # (not collected as a test)

SECRET = new_signing_secret()
TRIGGER, OTHER = "01M8EB65ENESE1SX21MRKX0J33", "01M8EB65ENESE1SX21MRKX0J34"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


K1, K2 = _key(), _key()
RING = parse_keyring(f"k1:{K1}")


def test_a_secret_round_trips_and_is_unreadable_sealed() -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    assert sealed.startswith(f"{PREFIX}k1:") and is_sealed(sealed)
    assert SECRET not in sealed and SECRET.removeprefix("whsec_") not in sealed
    assert key_id_of(sealed) == "k1"
    assert RING.open(sealed, TRIGGER, "signing_secret") == SECRET


def test_each_encryption_uses_a_fresh_nonce() -> None:
    assert RING.seal(SECRET, TRIGGER, "s") != RING.seal(SECRET, TRIGGER, "s")


def test_without_a_key_secrets_are_stored_and_read_as_given() -> None:
    none = Keyring()
    assert not none.enabled and none.current is None
    assert none.seal(SECRET, TRIGGER, "signing_secret") == SECRET
    assert none.open(SECRET, TRIGGER, "signing_secret") == SECRET


def test_plaintext_reads_as_it_is_with_a_key_too() -> None:
    # Rows written before the key was set, until rotate-secret-key encrypts them.
    assert RING.open(SECRET, TRIGGER, "signing_secret") == SECRET
    assert RING.needs_rotation(SECRET)


def test_an_encrypted_value_without_a_key_is_refused() -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    with pytest.raises(SecretKeyError, match="no key is set"):
        Keyring().open(sealed, TRIGGER, "signing_secret")


def test_an_unknown_key_id_is_refused_naming_it() -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    with pytest.raises(SecretKeyError, match=r"'k1'.*not among"):
        parse_keyring(f"k2:{K2}").open(sealed, TRIGGER, "signing_secret")


def test_a_wrong_key_under_the_same_id_does_not_decrypt() -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        parse_keyring(f"k1:{K2}").open(sealed, TRIGGER, "signing_secret")


def test_a_tampered_ciphertext_does_not_decrypt() -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    head, _, encoded = sealed.rpartition(":")
    blob = bytearray(base64.b64decode(encoded))
    blob[20] ^= 1
    tampered = f"{head}:{base64.b64encode(bytes(blob)).decode()}"
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        RING.open(tampered, TRIGGER, "signing_secret")


@pytest.mark.parametrize(
    ("row", "field"),
    [(OTHER, "signing_secret"), (TRIGGER, "previous_signing_secret")],
)
def test_a_ciphertext_moved_to_another_row_or_field_does_not_decrypt(row: str, field: str) -> None:
    sealed = RING.seal(SECRET, TRIGGER, "signing_secret")
    with pytest.raises(SecretKeyError, match="moved from another row"):
        RING.open(sealed, row, field)


@pytest.mark.parametrize(
    "stored",
    [f"{PREFIX}k1", f"{PREFIX}k1:", f"{PREFIX}k1:!!!", f"{PREFIX}:AAAA", f"{PREFIX}k1:QUJD"],
)
def test_a_malformed_encrypted_value_is_refused(stored: str) -> None:
    with pytest.raises(SecretKeyError, match="malformed"):
        RING.open(stored, TRIGGER, "signing_secret")


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = parse_keyring(f"old:{K1}")
    both = parse_keyring(f"new:{K2},old:{K1}")
    under_old = old.seal(SECRET, TRIGGER, "signing_secret")
    assert both.open(under_old, TRIGGER, "signing_secret") == SECRET
    assert both.needs_rotation(under_old)
    under_new = both.seal(SECRET, TRIGGER, "signing_secret")
    assert key_id_of(under_new) == "new" and not both.needs_rotation(under_new)
    assert both.ids == ("new", "old") and both.current == "new"


def test_the_keyring_never_shows_its_keys() -> None:
    assert K1 not in repr(RING) and "k1" in repr(RING)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("k1", "expected <key id>:<base64"),
        (f":{K1}", "key id"),
        (f"bad id:{K1}", "key id"),
        (f"{'x' * 33}:{K1}", "key id"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "16 bytes, expected 32"),
        (f"k1:{K1},k1:{K2}", "given twice"),
        (f"k1:{K1},", "key 2"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_the_variable(
    value: str, problem: str
) -> None:
    with pytest.raises(KeyringError, match=problem):
        parse_keyring(value)
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ(EVENTTRIGGER_SECRET_KEY=value), env_file=None)
    assert caught.value.variable == "EVENTTRIGGER_SECRET_KEY"
    assert problem in str(caught.value)
    for key in (K1, K2):
        assert key not in str(caught.value)  # never echoed


def test_the_setting_reaches_the_database_settings() -> None:
    settings = load_settings(
        environ=environ(EVENTTRIGGER_SECRET_KEY=f" a:{K1} , b:{K2} "), env_file=None
    )
    assert settings.database.secrets.ids == ("a", "b")
    assert not load_settings(environ=environ(), env_file=None).database.secrets.enabled
