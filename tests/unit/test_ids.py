"""ULID-style ids (time-ordered, unguessable) and Standard Webhooks signing secrets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.ids import looks_like_id, new_id, new_signing_secret

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def decode_time_ms(identifier: str) -> int:
    """The 48-bit millisecond timestamp in the first 10 characters."""
    value = 0
    for char in identifier[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_new_id_is_26_crockford_characters() -> None:
    for _ in range(200):
        identifier = new_id(NOW)
        assert len(identifier) == 26
        assert set(identifier) <= set(CROCKFORD)
        assert identifier[0] in "01234567"  # 128 bits: the first character carries 3


def test_new_id_encodes_the_millisecond_timestamp() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for offset_ms in (0, 1, 3, 999, 1001, 123_456_789):
        when = NOW + timedelta(milliseconds=offset_ms)
        expected = (when - epoch) // timedelta(milliseconds=1)
        assert decode_time_ms(new_id(when)) == expected


def test_new_id_is_time_ordered_across_milliseconds() -> None:
    times = [NOW + timedelta(milliseconds=ms) for ms in (0, 1, 2, 10, 1000, 86_400_000)]
    ids = [new_id(t) for t in times]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # Whatever the random part, a later millisecond always sorts after an earlier one.
    for _ in range(200):
        assert new_id(NOW) < new_id(NOW + timedelta(milliseconds=1))


def test_new_id_same_millisecond_ids_differ() -> None:
    ids = {new_id(NOW) for _ in range(1000)}
    assert len(ids) == 1000
    assert {i[:10] for i in ids} == {new_id(NOW)[:10]}  # same time prefix, random tail


def test_looks_like_id_accepts_new_ids() -> None:
    for _ in range(100):
        assert looks_like_id(new_id(NOW))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "01KDVDNA00W79M6N3WRAX4ZKF",  # 25
        "01KDVDNA00W79M6N3WRAX4ZKF55",  # 27
        "01kdvdna00w79m6n3wrax4zkf5",  # lower case
        "01KDVDNA00W79M6N3WRAX4ZKFI",  # I is not Crockford
        "01KDVDNA00W79M6N3WRAX4ZKFL",  # L
        "01KDVDNA00W79M6N3WRAX4ZKFO",  # O
        "01KDVDNA00W79M6N3WRAX4ZKFU",  # U
        "01KDVDNA00W79M6N3WRAX4ZK-5",
        " 01KDVDNA00W79M6N3WRAX4ZKF5",
        "01KDVDNA00W79M6N3WRAX4ZKF5 ",
        "01KDVDNA00W79M6N3WRAX4ZKF5\n",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",  # a UUID
        "123",
    ],
)
def test_looks_like_id_rejects_other_shapes(text: str) -> None:
    assert looks_like_id("01KDVDNA00W79M6N3WRAX4ZKF5")  # the valid base of most cases
    assert not looks_like_id(text)


def test_new_signing_secret_is_whsec_and_32_bytes() -> None:
    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert len(raw) == 32


def test_signing_secrets_are_random() -> None:
    secrets = {new_signing_secret() for _ in range(100)}
    assert len(secrets) == 100
