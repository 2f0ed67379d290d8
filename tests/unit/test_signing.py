"""Standard Webhooks signatures, checked against the scheme's published test vector."""

from __future__ import annotations

from eventtrigger.domain.signing import sign, verify

# From the Standard Webhooks specification's reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_any_listed_signature_and_rejects_tampering() -> None:
    assert verify(SECRET, MSG_ID, TIMESTAMP, BODY, f"v1,bogus {EXPECTED}")
    assert not verify(SECRET, MSG_ID, TIMESTAMP, BODY + b" ", EXPECTED)
    assert not verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, EXPECTED)


def test_empty_body_is_signed_as_empty() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, b"") != sign(SECRET, MSG_ID, TIMESTAMP, b"{}")
