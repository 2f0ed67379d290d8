"""Where a client command connects: flags, environment, profiles, the bootstrap key file;
and `eventtrigger login`'s refusals and the config file it writes."""

from __future__ import annotations

import argparse
import io
import os
import stat
import tomllib
from pathlib import Path

import pytest

from eventtrigger import bootstrap_key
from eventtrigger_client import profiles
from eventtrigger_client.profiles import Connection, ProfileError
from tests.process import free_port

CONFIG = """\
default_profile = "local"

[profiles.local]
url = "http://localhost:9001"
api_key = "etk_local_key_0123456789"

[profiles.prod]
url = "https://events.example.com"
api_key = "etk_prod_key_0123456789"
timeout = 10

[profiles.default]
url = "http://default.example:8080"
"""


def _env(
    tmp_path: Path, config: str | None = CONFIG, mode: int = 0o600, **extra: str
) -> dict[str, str]:
    """An environment whose config file holds `config` (none when None)."""
    home = tmp_path / "xdg"
    if config is not None:
        path = home / "eventtrigger" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        path.chmod(mode)
    return {"XDG_CONFIG_HOME": str(home), "HOME": str(tmp_path / "home"), **extra}


def _connect(env: dict[str, str], err: io.StringIO | None = None, **flags: object) -> Connection:
    return profiles.connection(argparse.Namespace(**flags), env, err=err or io.StringIO())


# ---- precedence ---------------------------------------------------------------------------


def test_flags_win_over_environment_and_profile(tmp_path: Path) -> None:
    env = _env(tmp_path, EVENTTRIGGER_URL="http://env:1", EVENTTRIGGER_API_KEY="env-key-0123456789")
    got = _connect(
        env, url="http://flag:2", api_key="flag-key-0123456789", timeout=5.0, profile="prod"
    )
    assert got == Connection("http://flag:2", "flag-key-0123456789", 5.0, "prod")


def test_a_chosen_profile_keeps_its_url_and_key_together(tmp_path: Path) -> None:
    # A local stack's variables are exported; --profile prod must still go to prod with
    # the prod key, and say that the variables were not used.
    env = _env(
        tmp_path,
        EVENTTRIGGER_URL="http://localhost:8080",
        EVENTTRIGGER_API_KEY="local-key-0123456789",
    )
    err = io.StringIO()
    got = _connect(env, err, profile="prod")
    assert got == Connection("https://events.example.com", "etk_prod_key_0123456789", 10.0, "prod")
    assert "EVENTTRIGGER_URL is not used" in err.getvalue()
    assert "EVENTTRIGGER_API_KEY is not used" in err.getvalue()
    # The same when the profile is chosen by the variable.
    assert _connect({**env, "EVENTTRIGGER_PROFILE": "prod"}) == got


def test_only_a_flag_overrides_half_of_a_chosen_profile(tmp_path: Path) -> None:
    env = _env(tmp_path, EVENTTRIGGER_API_KEY="env-key-0123456789")
    got = _connect(env, profile="prod", url="http://flag:2")
    assert got == Connection("http://flag:2", "etk_prod_key_0123456789", 10.0, "prod")
    got = _connect(env, profile="prod", api_key="flag-key-0123456789")
    assert got == Connection("https://events.example.com", "flag-key-0123456789", 10.0, "prod")


def test_an_environment_key_does_not_go_to_the_default_profiles_url(tmp_path: Path) -> None:
    # default_profile is prod; a key exported for a local stack must not be sent there.
    config = CONFIG.replace('default_profile = "local"', 'default_profile = "prod"')
    env = _env(tmp_path, config, EVENTTRIGGER_API_KEY="local-key-0123456789")
    err = io.StringIO()
    got = _connect(env, err)
    assert got == Connection("https://events.example.com", "etk_prod_key_0123456789", 10.0, "prod")
    assert "EVENTTRIGGER_API_KEY is not used" in err.getvalue()


def test_a_profile_key_does_not_go_to_the_environments_url(tmp_path: Path) -> None:
    config = CONFIG.replace('default_profile = "local"', 'default_profile = "prod"')
    env = _env(tmp_path, config, EVENTTRIGGER_URL="http://localhost:9999")
    got = _connect(env)
    assert got == Connection("http://localhost:9999", None, 10.0, "prod")
    # With both variables they go together.
    env["EVENTTRIGGER_API_KEY"] = "env-key-0123456789"
    assert _connect(env).api_key == "env-key-0123456789"


def test_url_flag_alone_takes_the_environments_key(tmp_path: Path) -> None:
    # --url given by hand with an exported key: the user's explicit choice.
    env = _env(tmp_path, None, EVENTTRIGGER_API_KEY="env-key-0123456789")
    got = _connect(env, url="http://flag:2")
    assert got == Connection("http://flag:2", "env-key-0123456789", 30.0, None)
    # An environment key without a URL anywhere goes to the default local URL.
    assert _connect(env) == Connection("http://localhost:8080", "env-key-0123456789", 30.0, None)


def test_absent_or_none_flags_fall_through(tmp_path: Path) -> None:
    # argparse leaves an option out (SUPPRESS) or sets None: both mean "not given".
    env = _env(tmp_path)
    assert _connect(env, url=None, api_key=None, timeout=None) == _connect(env)


def test_profile_selection_order(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _connect(env).profile == "local"  # the file's default_profile
    env["EVENTTRIGGER_PROFILE"] = "prod"
    assert _connect(env).profile == "prod"  # the variable wins over the file
    assert _connect(env, profile="default").profile == "default"  # the flag wins over both
    assert _connect(env, profile="default").url == "http://default.example:8080"


def test_a_profile_named_default_is_used_without_default_profile(tmp_path: Path) -> None:
    env = _env(tmp_path, CONFIG.replace('default_profile = "local"\n', ""))
    got = _connect(env)
    assert got == Connection("http://default.example:8080", None, 30.0, "default")


def test_no_config_file_means_the_defaults(tmp_path: Path) -> None:
    got = _connect(_env(tmp_path, None))
    assert got == Connection("http://localhost:8080", None, 30.0, None)


def test_the_config_file_is_under_xdg_config_home_else_home(tmp_path: Path) -> None:
    assert profiles.config_path({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path(
        "/x/cfg/eventtrigger/config.toml"
    )
    assert profiles.config_path({"HOME": "/h"}) == Path("/h/.config/eventtrigger/config.toml")
    # A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert profiles.config_path({"XDG_CONFIG_HOME": "cfg", "HOME": "/h"}) == Path(
        "/h/.config/eventtrigger/config.toml"
    )


# ---- the bootstrap key file -----------------------------------------------------------------


def test_the_bootstrap_key_file_is_the_last_source_of_the_key(tmp_path: Path) -> None:
    key = bootstrap_key.new_key()  # the format the api writes
    key_file = tmp_path / "api-key"
    key_file.write_text(key + "\n")
    env = _env(tmp_path, None, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file))
    assert _connect(env) == Connection("http://localhost:8080", key, 30.0, None)
    # Any other source of a key wins over the file.
    assert _connect(env, api_key="flag-key-0123456789").api_key == "flag-key-0123456789"
    env["EVENTTRIGGER_API_KEY"] = "env-key-0123456789"
    assert _connect(env).api_key == "env-key-0123456789"
    with_profile = _env(tmp_path, CONFIG, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file))
    assert _connect(with_profile).api_key == "etk_local_key_0123456789"


def test_the_bootstrap_key_file_goes_only_to_the_default_local_url(tmp_path: Path) -> None:
    key = bootstrap_key.new_key()
    key_file = tmp_path / "api-key"
    key_file.write_text(key)
    env = _env(tmp_path, None, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file))
    for local in ("http://127.0.0.1:8080", "http://localhost:8080/api/v1"):
        assert _connect(env, url=local).api_key == key
        assert _connect({**env, "EVENTTRIGGER_URL": local}).api_key == key
    for elsewhere in (
        "https://events.example.com",
        "http://localhost:9001",
        "https://localhost:8080",
    ):
        assert _connect(env, url=elsewhere).api_key is None
        assert _connect({**env, "EVENTTRIGGER_URL": elsewhere}).api_key is None
    # Nor to a profile's other URL.
    no_keys = CONFIG.replace('api_key = "etk_local_key_0123456789"\n', "")
    with_profile = _env(tmp_path, no_keys, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(key_file))
    assert _connect(with_profile) == Connection("http://localhost:9001", None, 30.0, "local")


def test_an_unusable_bootstrap_key_file_gives_no_key(tmp_path: Path) -> None:
    missing = _env(tmp_path, None, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(tmp_path / "absent"))
    assert _connect(missing).api_key is None
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\nat all\n")
    env = _env(tmp_path, None, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(garbage))
    assert _connect(env).api_key is None
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked"
        locked.write_text(bootstrap_key.new_key())
        locked.chmod(0)
        env = _env(tmp_path, None, EVENTTRIGGER_BOOTSTRAP_KEY_FILE=str(locked))
        assert _connect(env).api_key is None


def test_the_key_file_rule_matches_the_servers() -> None:
    for text in (bootstrap_key.new_key(), " padded-key-0123456789 \n", "x" * 512):
        assert profiles.key_from_file(text) == bootstrap_key.parse_key(text, Path("k"))
    for text in ("", "short", "two words-0123456789", "x" * 513):
        assert profiles.key_from_file(text) is None
        with pytest.raises(bootstrap_key.BootstrapKeyError):
            bootstrap_key.parse_key(text, Path("k"))


# ---- validation ------------------------------------------------------------------------------


def test_an_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with pytest.raises(ProfileError) as caught:
        _connect(env, profile="staging")
    assert "no profile 'staging' (from --profile)" in str(caught.value)
    assert "known profiles: default, local, prod" in str(caught.value)
    env["EVENTTRIGGER_PROFILE"] = "stage"
    with pytest.raises(ProfileError, match=r"'stage' \(from EVENTTRIGGER_PROFILE\)"):
        _connect(env)
    bad_default = _env(tmp_path, 'default_profile = "gone"\n[profiles.a]\nurl = "http://a:1"\n')
    with pytest.raises(ProfileError, match=r"'gone' \(from default_profile in .*known profiles: a"):
        _connect(bad_default)


def test_a_profile_asked_for_without_a_config_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"has no profiles.*eventtrigger login --profile prod"):
        _connect(_env(tmp_path, None), profile="prod")


def test_a_config_file_that_is_not_toml_names_the_line(tmp_path: Path) -> None:
    env = _env(tmp_path, '[profiles.a]\nurl = "http://a:1"\napi_key = etk_unquoted\n')
    with pytest.raises(ProfileError, match=r"config\.toml is not valid TOML: .*line 3"):
        _connect(env)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[profiles.a]\napikey = "x"\n', r"profiles\.a: unknown setting apikey \(known: url"),
        ('[profiles.a]\ntimeout = "soon"\n', r"profiles\.a\.timeout must be a number"),
        ("[profiles.a]\nurl = 8080\n", r"profiles\.a\.url must be a string"),
        ("default_profile = 1\n", r"default_profile must be a string"),
        ('profiles = "a"\n', r"profiles must be a table"),
    ],
)
def test_a_config_file_with_wrong_settings_is_refused_by_name(
    tmp_path: Path, config: str, message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        _connect(_env(tmp_path, config), profile="a" if "[profiles.a]" in config else None)


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://host", "http://", "https:///x"])
def test_a_url_that_is_not_http_with_a_host_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ProfileError, match=r"must be http\(s\)://host"):
        _connect(_env(tmp_path, None), url=url)


def test_a_bad_url_in_a_profile_says_which_profile(tmp_path: Path) -> None:
    env = _env(tmp_path, '[profiles.default]\nurl = "events.example.com"\n')
    with pytest.raises(ProfileError, match=r"'events\.example\.com' \(profile 'default'\)"):
        _connect(env)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_a_timeout_must_be_positive(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ProfileError, match="timeout"):
        _connect(_env(tmp_path, None), timeout=timeout)
    env = _env(tmp_path, "[profiles.default]\ntimeout = 0\n")
    with pytest.raises(ProfileError, match=r"more than 0 seconds.*profile 'default'"):
        _connect(env)


# ---- the permission warning ------------------------------------------------------------------


def test_a_readable_config_file_with_keys_is_warned_about_once(tmp_path: Path) -> None:
    env = _env(tmp_path, CONFIG, mode=0o644)
    err = io.StringIO()
    _connect(env, err=err)
    path = profiles.config_path(env)
    assert err.getvalue() == (
        f"eventtrigger: warning: {path} holds API keys and is readable by others "
        f"(mode 0644); run: chmod 600 {path}\n"
    )


def test_no_warning_for_a_private_file_or_one_without_keys(tmp_path: Path) -> None:
    err = io.StringIO()
    _connect(_env(tmp_path, CONFIG, mode=0o600), err=err)
    _connect(_env(tmp_path, '[profiles.default]\nurl = "http://a:1"\n', mode=0o644), err=err)
    assert err.getvalue() == ""


# ---- the config file login writes ------------------------------------------------------------


def test_render_config_reads_back_as_written() -> None:
    config = {
        "default_profile": "prod",
        "editor": "vi",
        "profiles": {
            "prod": {
                "url": "https://e.example",
                "api_key": 'q"uo\\te\nnew\x7f\x01',
                "timeout": 2.5,
            },
            "local": {"url": "http://localhost:8080", "api_key": "café ☕", "timeout": 10},
        },
    }
    text = profiles.render_config(config)
    assert tomllib.loads(text) == config
    assert text.startswith('default_profile = "prod"\neditor = "vi"\n\n[profiles.prod]\n')


def test_write_config_is_private_and_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "new" / "eventtrigger" / "config.toml"
    profiles.write_config(path, {"profiles": {"a": {"url": "http://a:1"}}})
    profiles.write_config(path, {"profiles": {"b": {"url": "http://b:1"}}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert tomllib.loads(path.read_text()) == {"profiles": {"b": {"url": "http://b:1"}}}
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary left


# ---- login's refusals (a working login is tested against a real API: test_client_package) --


def _login(env: dict[str, str], stdin: str = "", **flags: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = profiles.login(argparse.Namespace(**flags), env, io.StringIO(stdin), out, err)
    return code, out.getvalue(), err.getvalue()


def test_login_to_an_unreachable_api_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path, None)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = _login(env, "etk_some_key_0123456789\n", url=url, timeout=2.0)
    assert code == 3 and out == ""
    assert "cannot reach the API" in err and "nothing written" in err
    assert not profiles.config_path(env).exists()


def test_login_without_a_key_is_a_usage_error(tmp_path: Path) -> None:
    env = _env(tmp_path, None)
    code, _, err = _login(env, "\n", url="http://127.0.0.1:1")
    assert code == 2 and "no API key given" in err
    assert not profiles.config_path(env).exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"url": "localhost:8080"}, "must be http(s)://host"),
        ({"profile": "my prod"}, "a profile name is letters"),
        ({"timeout": 0.0}, "more than 0 seconds"),
    ],
)
def test_login_refuses_bad_flags_before_asking(
    tmp_path: Path, flags: dict[str, object], message: str
) -> None:
    code, _, err = _login(_env(tmp_path, None), "etk_some_key_0123456789\n", **flags)
    assert code == 2 and message in err


def test_login_does_not_touch_a_broken_config_file(tmp_path: Path) -> None:
    env = _env(tmp_path, "not = [toml\n")
    code, _, err = _login(env, "etk_some_key_0123456789\n", url="http://127.0.0.1:1")
    assert code == 2 and "is not valid TOML" in err
    assert profiles.config_path(env).read_text() == "not = [toml\n"


def test_login_parser_needs_no_client_and_takes_its_options() -> None:
    root = argparse.ArgumentParser(prog="eventtrigger")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS)  # shared options already there
    common.add_argument("--api-key", default=argparse.SUPPRESS)
    profiles.add_login_command(root.add_subparsers(dest="command"), common)
    args = root.parse_args(["login", "--profile", "prod", "--url", "http://a:1", "--default"])
    assert args.needs_client is False
    assert (args.profile, args.url, args.make_default) == ("prod", "http://a:1", True)
    assert args.action.__name__ == "_login"
