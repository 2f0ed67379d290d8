"""`/health` says how signing secrets are stored, beside its existing fields (pure)."""

from __future__ import annotations

import pytest

from eventtrigger.observability.health import Health, secrets_mode


@pytest.mark.parametrize(("encrypted", "mode"), [(True, "encrypted"), (False, "plaintext")])
async def test_the_report_names_how_secrets_are_stored(encrypted: bool, mode: str) -> None:
    healthy, body = await Health(("api",), {}, secrets=secrets_mode(encrypted)).report()
    assert healthy and body["secrets"] == mode
    assert {"status", "roles", "checks"} <= set(body)  # the existing shape is kept


async def test_without_the_field_given_the_report_is_as_before() -> None:
    _, body = await Health(("api",), {}).report()
    assert set(body) == {"status", "roles", "checks"}
