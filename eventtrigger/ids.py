"""Identifiers: time-ordered and unguessable (ULID: 48-bit ms time + 80 random bits).

Time order keeps InnoDB inserts appending to the clustered index and lets lists page by
id; 80 bits from `secrets` make a trigger id (and so its webhook URL) unguessable.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
ID_PATTERN = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def new_id(now: datetime) -> str:
    value = (int(now.timestamp() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def looks_like_id(text: str) -> bool:
    return ID_PATTERN.fullmatch(text) is not None


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
