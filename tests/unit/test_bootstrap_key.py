"""The bootstrap key's pure decisions: when the key file is in play, what `keys
show-bootstrap` says when it is not, what counts as a key, and that the key then
authenticates like a configured one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eventtrigger.bootstrap_key import (
    BootstrapKeyError,
    key_file,
    new_key,
    parse_key,
    show_refusal,
    with_key,
)
from eventtrigger.config import Settings, SettingsError, load_settings
from eventtrigger.roles.api.auth import bootstrap_keys, match_bootstrap

PATH = Path("/var/lib/eventtrigger/bootstrap-key")


def load(**values: str) -> Settings:
    return load_settings(environ={f"EVENTTRIGGER_{k}": v for k, v in values.items()}, env_file=None)


def test_the_setting_is_a_path_and_off_by_default() -> None:
    assert load().bootstrap_key_file is None
    assert load(BOOTSTRAP_KEY_FILE=" ").bootstrap_key_file is None
    assert load(BOOTSTRAP_KEY_FILE=f" {PATH} ").bootstrap_key_file == PATH


def test_the_file_is_used_only_without_configured_keys() -> None:
    assert key_file(load(BOOTSTRAP_KEY_FILE=str(PATH))) == PATH
    assert key_file(load(BOOTSTRAP_KEY_FILE=str(PATH), API_KEYS="k1,k2")) is None
    assert key_file(load(BOOTSTRAP_KEY_FILE=str(PATH), AUTH="disabled")) is None
    assert key_file(load()) is None


def test_show_refusal_says_why_there_is_nothing_to_show() -> None:
    assert show_refusal(load(BOOTSTRAP_KEY_FILE=str(PATH))) is None
    unset = show_refusal(load())
    assert unset is not None
    assert "EVENTTRIGGER_BOOTSTRAP_KEY_FILE is not set" in unset
    configured = show_refusal(load(BOOTSTRAP_KEY_FILE=str(PATH), API_KEYS="k1"))
    assert configured is not None
    assert "the API keys are the ones" in configured
    assert "EVENTTRIGGER_API_KEYS" in configured
    disabled = show_refusal(load(BOOTSTRAP_KEY_FILE=str(PATH), AUTH="disabled"))
    assert disabled is not None
    assert "EVENTTRIGGER_AUTH=disabled" in disabled


def test_new_keys_are_prefixed_url_safe_and_distinct() -> None:
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert re.fullmatch(r"etk_[a-z2-7]{52}", key), key  # the managed keys' one format
        assert parse_key(key + "\n", PATH) == key  # what is written reads back


@pytest.mark.parametrize(
    "text", ["etk_abc0123456789xyz\n", "  etk_abc0123456789xyz  ", "\netk_abc0123456789xyz"]
)
def test_parse_key_strips_whitespace(text: str) -> None:
    assert parse_key(text, PATH) == "etk_abc0123456789xyz"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("\n \t\n", "is empty"),
        ("etk_abc etk_def0123456789", "does not hold a key"),
        ("short", "does not hold a key"),
        ("etk_abc0123456789\netk_def0123456789", "does not hold a key"),
        ("x" * 513, "does not hold a key"),
        ("etk_caf\u00e90123456789", "does not hold a key"),
    ],
)
def test_parse_key_refuses_empty_or_corrupt_content_naming_the_file(
    text: str, problem: str
) -> None:
    with pytest.raises(BootstrapKeyError, match=problem) as refused:
        parse_key(text, PATH)
    assert str(PATH) in str(refused.value)
    # A configuration error: the CLI reports it as one (exit 2) with the variable's name.
    assert isinstance(refused.value, SettingsError)
    assert refused.value.variable == "EVENTTRIGGER_BOOTSTRAP_KEY_FILE"


def test_the_key_authenticates_like_a_configured_one() -> None:
    settings = with_key(load(BOOTSTRAP_KEY_FILE=str(PATH)), "etk_abc0123456789xyz")
    known = bootstrap_keys(settings)
    found = match_bootstrap("etk_abc0123456789xyz", known)
    assert found is not None and found.principal.allows("admin") and found.principal.bootstrap
    assert match_bootstrap("etk_other0123456789", known) is None
