"""Where a client command connects, and with which key: flags, environment, profiles.

The URL and the key go together, so that a key is never sent to a server it was not
meant for:

  1. a flag (`--url`, `--api-key`, `--timeout`) always wins, for that one setting
  2. a profile chosen by name (`--profile`, else `EVENTTRIGGER_PROFILE`) gives the URL
     and the key as a pair: the environment's `EVENTTRIGGER_URL` and
     `EVENTTRIGGER_API_KEY` are not used with it (a note on stderr says so)
  3. otherwise the URL is the first of `EVENTTRIGGER_URL`, the default profile's
     (the file's `default_profile`, else a profile named `default`),
     `http://localhost:8080`; and the key is the one from the same place: with
     `EVENTTRIGGER_URL`, only `EVENTTRIGGER_API_KEY`; with the profile's URL, only the
     profile's key; with `--url` or the default URL, `EVENTTRIGGER_API_KEY`, else the
     profile's key
  4. the key only, when none of those gave one and the URL is the default local one
     (`http://localhost:8080` or `http://127.0.0.1:8080`): the api's bootstrap key file
     (`EVENTTRIGGER_BOOTSTRAP_KEY_FILE`), so that `docker compose exec api eventtrigger
     triggers list` needs no key typed, and that key goes nowhere else
  5. the timeout: the flag, the profile's, else 30 s

The config file is `$XDG_CONFIG_HOME/eventtrigger/config.toml`, by default
`~/.config/eventtrigger/config.toml`:

    default_profile = "local"
    [profiles.local]
    url = "http://localhost:8080"
    api_key = "etk_..."
    [profiles.prod]
    url = "https://events.example.com"
    api_key = "etk_..."
    timeout = 10

`eventtrigger login` (see `add_login_command`) checks a key against the API and writes a
profile. The choice is a pure function (`resolve`) of the flags, the environment, the
parsed file and the key file's text; `connection` and the login command do the I/O.
This module ships with the client alone, so it never imports the server package.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import stat
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from eventtrigger_client.api import ApiClient, ApiError, Unreachable

DEFAULT_URL = "http://localhost:8080"
DEFAULT_TIMEOUT = 30.0
DEFAULT_PROFILE = "default"
URL_VARIABLE = "EVENTTRIGGER_URL"
KEY_VARIABLE = "EVENTTRIGGER_API_KEY"
PROFILE_VARIABLE = "EVENTTRIGGER_PROFILE"
KEY_FILE_VARIABLE = "EVENTTRIGGER_BOOTSTRAP_KEY_FILE"
PROFILE_SETTINGS = ("url", "api_key", "timeout")
OK, REFUSED, USAGE, SERVER = 0, 1, 2, 3
# Profile names are TOML bare keys and shell words: nothing to quote anywhere.
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The bootstrap key file holds one token (the server's rule, restated here because the
# client cannot import the server): anything else is not sent as a key.
_KEY_FILE_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


@dataclass(frozen=True)
class Connection:
    """What one client command connects to; `profile` names the profile used, if any."""

    url: str
    api_key: str | None
    timeout: float
    profile: str | None


class ProfileError(Exception):
    """A flag, variable, profile or config file that cannot be used (exit 2)."""


# ---- the pure core ---------------------------------------------------------------------


def config_path(environ: Mapping[str, str]) -> Path:
    """The config file: under `$XDG_CONFIG_HOME` when set (and absolute), else ~/.config."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):  # the spec says to ignore a relative value
        base = Path(xdg)
    else:
        home = environ.get("HOME") or os.path.expanduser("~")
        base = Path(home) / ".config"
    return base / "eventtrigger" / "config.toml"


def parse_config(text: str, path: Path) -> dict[str, Any]:
    """The config file's content, checked: ProfileError naming the line or the setting."""
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line N, column M)".
        raise ProfileError(f"{path} is not valid TOML: {exc}") from None
    default = config.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ProfileError(f"{path}: default_profile must be a string (a profile's name)")
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ProfileError(f"{path}: profiles must be a table of [profiles.NAME] tables")
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            raise ProfileError(f"{path}: profiles.{name} must be a table")
        unknown = sorted(set(profile) - set(PROFILE_SETTINGS))
        if unknown:
            raise ProfileError(
                f"{path}: profiles.{name}: unknown setting {', '.join(unknown)} "
                f"(known: {', '.join(PROFILE_SETTINGS)})"
            )
        for setting in ("url", "api_key"):
            if setting in profile and not isinstance(profile[setting], str):
                raise ProfileError(f"{path}: profiles.{name}.{setting} must be a string")
        timeout = profile.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise ProfileError(f"{path}: profiles.{name}.timeout must be a number of seconds")
    return config


def select_profile(
    config: Mapping[str, Any], flag: str | None, environ: Mapping[str, str], path: Path
) -> tuple[str | None, Mapping[str, Any]]:
    """The profile in use and its settings; (None, {}) when none is selected or exists.

    A profile asked for by name (flag, variable or default_profile) must exist.
    """
    profiles: Mapping[str, Any] = config.get("profiles", {})
    for name, source in (
        (flag, "--profile"),
        (environ.get(PROFILE_VARIABLE) or None, PROFILE_VARIABLE),
        (config.get("default_profile"), f"default_profile in {path}"),
    ):
        if name is None:
            continue
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or f"none: {path} has no profiles"
            raise ProfileError(
                f"no profile {name!r} (from {source}); known profiles: {known}. "
                f"Make one with: eventtrigger login --profile {name}"
            )
        return name, profiles[name]
    if DEFAULT_PROFILE in profiles:
        return DEFAULT_PROFILE, profiles[DEFAULT_PROFILE]
    return None, {}


def key_from_file(text: str) -> str | None:
    """The key in the bootstrap key file's `text`; None when it holds no key."""
    key = text.strip()
    return key if _KEY_FILE_TOKEN.fullmatch(key) else None


def check_url(url: str, source: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"the API URL must be http(s)://host[:port], not {url!r} ({source})")
    return url


def check_timeout(value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProfileError(f"the timeout must be a number of seconds ({source})")
    try:
        seconds = float(value)
    except ValueError:
        raise ProfileError(f"the timeout {value!r} is not a number ({source})") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ProfileError(f"the timeout must be more than 0 seconds, not {value!r} ({source})")
    return seconds


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    profile: tuple[str | None, Mapping[str, Any]],
    key_file_text: str | None,
    *,
    chosen: bool = False,
) -> Connection:
    """The connection from the flags given (`url`, `api_key`, `timeout`; absent or None
    when not given), the environment, the selected profile (`chosen`: by --profile or
    EVENTTRIGGER_PROFILE, not by default) and the bootstrap key file's text.

    A key goes only where the same place says it goes (see the module docstring): a
    key from the environment or a profile is never sent to a URL from elsewhere unless
    a flag says so, and the key file only to the default local URL.
    """
    name, settings = profile
    where = f"profile {name!r}" if name else ""
    flag_url = (flags.get("url"), "--url")
    flag_key = (flags.get("api_key"), "--api-key")
    env_url = (environ.get(URL_VARIABLE), URL_VARIABLE)
    env_key = (environ.get(KEY_VARIABLE), KEY_VARIABLE)
    profile_url = (settings.get("url"), where)
    profile_key = (settings.get("api_key"), where)
    default_url = (DEFAULT_URL, "default")
    no_key: tuple[Any, str] = (None, "")

    if chosen:
        # The user named this profile: its URL and key go together; only a flag overrides
        # one of them (a variable exported for another server must not).
        url = _first(flag_url, profile_url, default_url)
        key = _first(flag_key, profile_key, no_key)
    else:
        url = _first(flag_url, env_url, profile_url, default_url)
        # The key that belongs with that URL: from the same place, or (the URL being a
        # flag, an explicit choice) from the environment or the profile.
        partners = {
            "--url": (env_key, profile_key),
            URL_VARIABLE: (env_key,),
            where: (profile_key,),
            "default": (env_key, profile_key),
        }[url[1]]
        key = _first(flag_key, *partners, no_key)
    if key[0] is None and key_file_text is not None and is_local_default(str(url[0])):
        # The api's own key, for `docker compose exec api eventtrigger ...`: only to the
        # API in that same container, never to a URL someone passed.
        key = (key_from_file(key_file_text), "key file")
    timeout = _first(
        (flags.get("timeout"), "--timeout"),
        (settings.get("timeout"), where),
        (DEFAULT_TIMEOUT, "default"),
    )
    return Connection(
        url=check_url(str(url[0]), url[1]),
        api_key=key[0],
        timeout=check_timeout(timeout[0], timeout[1]),
        profile=name,
    )


def is_local_default(url: str) -> bool:
    """Is `url` the default local API (`http://localhost:8080` or `127.0.0.1:8080`, with or
    without the API prefix): the only place the bootstrap key file's key is sent?"""
    parts = urlsplit(url.rstrip("/").removesuffix("/api/v1"))
    try:
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in ("localhost", "127.0.0.1")
        and port == 8080
        and parts.path in ("", "/")
        and not parts.query
        and parts.username is None
    )


def _first(*candidates: tuple[Any, str]) -> tuple[Any, str]:
    """The first (value, where it came from) whose value is given (not None or empty)."""
    for value, source in candidates:
        if value is not None and value != "":
            return value, source
    return candidates[-1]


def loosely_readable(mode: int) -> bool:
    """Can others than the owner read or write a file of this mode (as ssh refuses)?"""
    return bool(stat.S_IMODE(mode) & 0o077)


def render_config(config: Mapping[str, Any]) -> str:
    """`config` as TOML: top-level values first, then each [profiles.NAME] table."""
    lines: list[str] = []
    for key, value in config.items():
        if not isinstance(value, dict):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in config.items():
        if isinstance(value, dict):
            lines.extend(_toml_table([key], value))
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(path: list[str], table: Mapping[str, Any]) -> list[str]:
    values = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)
    ]
    lines: list[str] = []
    if values or not table:  # [profiles] itself needs no header: [profiles.x] implies it
        lines = ["", f"[{'.'.join(_toml_key(p) for p in path)}]", *values]
    for key, value in table.items():
        if isinstance(value, dict):
            lines.extend(_toml_table([*path, key], value))
    return lines


def _toml_key(key: str) -> str:
    return key if _PROFILE_NAME.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ProfileError(f"cannot write a {type(value).__name__} into the config file")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


# ---- the I/O shell ----------------------------------------------------------------------


def read_config(path: Path) -> tuple[dict[str, Any], int | None]:
    """The config file's checked content and its mode; ({}, None) when there is no file."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            raw = handle.read()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError(f"{path} is not UTF-8 text") from None
    return parse_config(text, path), mode


def connection(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    err: TextIO | None = None,
) -> Connection:
    """Where and how the command in `args` connects (see the module docstring).

    Warns on `err` (stderr) when the config file holds a key and others may read it.
    """
    environ = os.environ if environ is None else environ
    flags = {name: getattr(args, name, None) for name in PROFILE_SETTINGS}
    path = config_path(environ)
    config, mode = read_config(path)
    profile = select_profile(config, getattr(args, "profile", None), environ, path)
    chosen = bool(getattr(args, "profile", None) or environ.get(PROFILE_VARIABLE))
    key_text = None
    if not flags.get("api_key"):
        key_text = _read_key_file(environ.get(KEY_FILE_VARIABLE) or "")
    if mode is not None and loosely_readable(mode) and _holds_a_key(config):
        print(
            f"eventtrigger: warning: {path} holds API keys and is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
            file=err or sys.stderr,
        )
    where = resolve(flags, environ, profile, key_text, chosen=chosen)
    for variable, flag in ((URL_VARIABLE, "url"), (KEY_VARIABLE, "api_key")):
        value = environ.get(variable)
        if value and not flags.get(flag) and value not in (where.url, where.api_key):
            # Say so: a variable left exported for another server is the likely mistake.
            reason = (
                f"profile {where.profile!r} was chosen, and its URL and key go together"
                if chosen
                else f"it does not go with the URL in use ({where.url})"
            )
            print(
                f"eventtrigger: note: {variable} is not used: {reason}; "
                "pass --url or --api-key to combine them",
                file=err or sys.stderr,
            )
    return where


def _holds_a_key(config: Mapping[str, Any]) -> bool:
    return any(
        isinstance(p, dict) and p.get("api_key") for p in config.get("profiles", {}).values()
    )


def _read_key_file(path: str) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None  # not this user's file, or not there yet: no key from it, as unset


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Write `config` to `path` whole or not at all: a 0600 temporary file in the same
    directory, renamed over the old one. Missing directories are made 0700."""
    text = render_config(config)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---- eventtrigger login -----------------------------------------------------------------

LOGIN_HELP = """\
Check an API key against the API (GET /api/v1/keys/self) and save it, with the URL, as a
profile of the config file, so that later commands need neither --url nor --api-key.

The key comes from --api-key, else a prompt (on a terminal), else one line of stdin:
  eventtrigger login --url https://events.example.com --profile prod --default
  echo "$KEY" | eventtrigger login --profile ci

--profile NAME names the profile to save (default: default). The URL comes from --url,
else EVENTTRIGGER_URL, else the profile's saved one, else http://localhost:8080; a
--timeout given is saved with it. The file is written only when the key works (mode
0600, in a 0700 directory); it is rewritten whole, so other profiles and settings are
kept but comments in it are not. Use the profile with --profile NAME or
EVENTTRIGGER_PROFILE=NAME, or make it the default with --default (the first profile
saved becomes the default).

A profile chosen by name gives its URL and key as a pair: EVENTTRIGGER_URL and
EVENTTRIGGER_API_KEY do not override them (only --url and --api-key do), so a variable
exported for another server never sends this key there, nor its key here. The default
profile's key goes only to its own URL; the api's bootstrap key file only to
http://localhost:8080.

config file: $XDG_CONFIG_HOME/eventtrigger/config.toml (default ~/.config/eventtrigger/)

exit codes:
  0  logged in, profile saved
  1  the API refused the key (401/403) or the request; nothing written
  2  bad usage: no key given, a bad profile name or URL, an unreadable config file
  3  the API could not be reached or failed (5xx); nothing written"""


def add_login_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `eventtrigger login`. Its action builds its own client from its flags, so its
    parser sets `needs_client=False`: the dispatcher must not build one from a profile
    (which may not exist yet: that is what login is for)."""
    parser = sub.add_parser(
        "login",
        help="check an API key and save it with the URL as a profile",
        description=LOGIN_HELP,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    taken = set(parser._option_string_actions)
    # The shared connection options may already hold these; add only what is missing.
    if "--profile" not in taken:
        parser.add_argument(
            "--profile", default=argparse.SUPPRESS, help="the profile to save (default)"
        )
    if "--url" not in taken:
        parser.add_argument("--url", default=argparse.SUPPRESS, help="API base URL")
    if "--api-key" not in taken:
        parser.add_argument("--api-key", default=argparse.SUPPRESS, help="the key to check")
    if "--timeout" not in taken:
        parser.add_argument(
            "--timeout", type=float, default=argparse.SUPPRESS, help="seconds per request"
        )
    parser.add_argument(
        "--default",
        action="store_true",
        dest="make_default",
        help="make this profile the default one (default_profile)",
    )
    parser.set_defaults(action=_login, needs_client=False)


def _login(args: argparse.Namespace, client: ApiClient | None, out: TextIO) -> int:
    """`eventtrigger login`; `client` is not used (see add_login_command)."""
    return login(args, os.environ, sys.stdin, out, sys.stderr)


def login(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    """Check the key, then save the profile; the exit code (see LOGIN_HELP)."""
    try:
        name = getattr(args, "profile", None) or DEFAULT_PROFILE
        if not _PROFILE_NAME.fullmatch(name):
            raise ProfileError(f"a profile name is letters, digits, - and _; not {name!r}")
        path = config_path(environ)
        config, _ = read_config(path)
        saved: dict[str, Any] = dict(config.get("profiles", {}).get(name, {}))
        url, url_source = _first(
            (getattr(args, "url", None), "--url"),
            (environ.get(URL_VARIABLE), URL_VARIABLE),
            (saved.get("url"), f"profile {name!r}"),
            (DEFAULT_URL, "default"),
        )
        check_url(url, url_source)
        timeout = getattr(args, "timeout", None)
        if timeout is not None:
            timeout = check_timeout(timeout, "--timeout")
        key = getattr(args, "api_key", None) or _ask_key(url, stdin)
    except ProfileError as exc:
        print(f"eventtrigger: {exc}", file=err)
        return USAGE

    checked = ApiClient(url, key, timeout or saved.get("timeout") or DEFAULT_TIMEOUT)
    try:
        me = checked.request("GET", "/keys/self")
    except ApiError as exc:
        refused = exc.status in (401, 403)
        print(
            f"eventtrigger: {checked.base_url} "
            f"{'refused the key' if refused else 'answered'}: {exc.status} {exc.detail}; "
            "nothing written",
            file=err,
        )
        if exc.status in (404, 405):
            print("  hint: is this an eventtrigger API, and a version with keys?", file=err)
        return SERVER if exc.status >= 500 else REFUSED
    except Unreachable as exc:
        print(f"eventtrigger: cannot reach the API: {exc}; nothing written", file=err)
        return SERVER
    if not isinstance(me, dict):
        print(f"eventtrigger: {checked.base_url}: unexpected answer; nothing written", file=err)
        return SERVER

    saved.update({"url": checked.base_url, "api_key": key})
    if timeout is not None:
        saved["timeout"] = timeout
    profiles = dict(config.get("profiles", {}))
    profiles[name] = saved
    updated = {k: v for k, v in config.items() if k != "profiles"}
    if getattr(args, "make_default", False) or not (
        config.get("default_profile") or DEFAULT_PROFILE in profiles or len(profiles) > 1
    ):
        updated["default_profile"] = name
    # default_profile first, as people write the file.
    updated = {"default_profile": updated.pop("default_profile", None), **updated}
    if updated["default_profile"] is None:
        del updated["default_profile"]
    updated["profiles"] = profiles
    try:
        write_config(path, updated)
    except OSError as exc:
        print(f"eventtrigger: cannot write {path}: {exc.strerror or exc}", file=err)
        return USAGE
    scopes = ", ".join(str(s) for s in me.get("scopes") or []) or "none"
    print(
        f"logged in to {checked.base_url} as key {me.get('id')} "
        f"({me.get('name')}, scopes {scopes}); profile {name} saved in {path}",
        file=out,
    )
    return OK


def _ask_key(url: str, stdin: TextIO) -> str:
    # A prompt that does not echo on a terminal; a pipe (`echo $KEY | ...`) gives one line.
    answer = getpass.getpass(f"API key for {url}: ") if stdin.isatty() else stdin.readline()
    key = answer.strip()
    if not key:
        raise ProfileError("no API key given (--api-key, the prompt, or one line on stdin)")
    return key
