"""Signing secrets encrypted at rest (pure): AES-256-GCM under EVENTTRIGGER_SECRET_KEY.

The setting holds one or more keys, comma-separated, each `<key id>:<base64 of 32 bytes>`.
The first key encrypts; every key decrypts, so a key is rotated by putting a new one
first, re-encrypting (`eventtrigger rotate-secret-key`), then dropping the old one.

A stored secret is either plaintext (written without a key, or before encryption was
turned on) or `enc:v1:<key id>:<base64(nonce || ciphertext+tag)>`. The associated data
is the row's identity (`<row id>/<field>`: a trigger id or an event id, and the column
or snapshot field), so a ciphertext copied into another row or field does not decrypt:
someone who can write the table still cannot make one trigger sign with another's
secret. A fresh random 96-bit nonce per encryption: with at most a few encryptions per
trigger and rotation, the birthday bound of random nonces is nowhere near.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16
# Key ids appear in every stored ciphertext: short, and no ':' or ',' (the separators).
KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_KEY_ID = 32


class KeyringError(ValueError):
    """EVENTTRIGGER_SECRET_KEY is malformed (the message says how, never the key)."""


class SecretKeyError(Exception):
    """A stored secret cannot be read with the keys given: encrypted while no key is set,
    under a key id that is not among them, or a wrong key or altered ciphertext."""


@dataclass(frozen=True)
class Keyring:
    """The keys of EVENTTRIGGER_SECRET_KEY in order (the first encrypts); empty: none set,
    secrets are stored as given."""

    keys: tuple[tuple[str, bytes], ...] = ()
    # For tests only: where nonces come from.
    _random: Callable[[int], bytes] = field(default=os.urandom, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Keyring(ids={self.ids!r})"  # never the key bytes

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    @property
    def current(self) -> str | None:
        """The id of the key that encrypts (None: no key set)."""
        return self.keys[0][0] if self.keys else None

    def seal(self, plaintext: str, row: str, name: str) -> str:
        """`plaintext` as stored in `row`'s field `name`: encrypted under the first key, or
        as it is without a key. An already sealed value is returned as it is."""
        if not self.keys or is_sealed(plaintext):
            return plaintext
        key_id, key = self.keys[0]
        nonce = self._random(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), _associated(row, name))
        return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, row: str, name: str) -> str:
        """The plaintext of a stored value (a plaintext one as it is); SecretKeyError if it
        is encrypted and cannot be decrypted with these keys."""
        if not is_sealed(stored):
            return stored
        key_id, blob = _parts(stored)
        if not self.keys:
            raise SecretKeyError(
                f"{name} of {row} is encrypted (key id {key_id!r}) but no key is set"
            )
        key = dict(self.keys).get(key_id)
        if key is None:
            raise SecretKeyError(
                f"{name} of {row} is encrypted under key id {key_id!r}, which is not among "
                f"the keys given ({', '.join(self.ids)})"
            )
        try:
            plain = AESGCM(key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(row, name)
            )
        except InvalidTag:
            raise SecretKeyError(
                f"{name} of {row} does not decrypt under key id {key_id!r}: a wrong key, "
                "or a value altered or moved from another row"
            ) from None
        return plain.decode()

    def needs_rotation(self, stored: str) -> bool:
        """Whether `stored` is not yet what `seal` writes now: plaintext while a key is set,
        or encrypted under another key than the first."""
        if not self.keys:
            return False
        return not is_sealed(stored) or key_id_of(stored) != self.current


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    """The key id an encrypted value names (None for plaintext)."""
    return _parts(stored)[0] if is_sealed(stored) else None


def _parts(stored: str) -> tuple[str, bytes]:
    key_id, sep, encoded = stored[len(PREFIX) :].partition(":")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        blob = b""
    if not sep or not KEY_ID.fullmatch(key_id) or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SecretKeyError("a stored secret is marked encrypted but is malformed")
    return key_id, blob


def _associated(row: str, name: str) -> bytes:
    return f"{row}/{name}".encode()


def parse_keyring(value: str) -> Keyring:
    """EVENTTRIGGER_SECRET_KEY's value as a Keyring (empty value: no key); KeyringError
    says what is wrong, naming the entry by position, never echoing key material."""
    text = value.strip()
    if not text:
        return Keyring()
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(text.split(","), start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        where = f"key {position}"
        if not sep:
            raise KeyringError(f"{where}: expected <key id>:<base64 of {KEY_BYTES} bytes>")
        if not KEY_ID.fullmatch(key_id):
            raise KeyringError(
                f"{where}: the key id must be 1-{MAX_KEY_ID} characters of A-Z a-z 0-9 _ . -"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"{where} ({key_id}): not valid base64") from None
        if len(key) != KEY_BYTES:
            raise KeyringError(
                f"{where} ({key_id}): decodes to {len(key)} bytes, expected {KEY_BYTES} "
                "(make one with: openssl rand -base64 32)"
            )
        if key_id in dict(keys):
            raise KeyringError(f"{where}: key id {key_id!r} is given twice")
        keys.append((key_id, key))
    return Keyring(tuple(keys))
