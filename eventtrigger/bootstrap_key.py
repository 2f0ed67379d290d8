"""The bootstrap API key: one key an api process makes for itself when no key is configured.

With EVENTTRIGGER_BOOTSTRAP_KEY_FILE set and EVENTTRIGGER_API_KEYS empty, the first api
process to start writes a fresh key to that file and every api process (replicas share
the file) authenticates with it, so a deployment never ships a published default key.
The decisions (is the file in play? is its content a key?) are pure; `obtain` and `read`
do the file I/O, and the file appears whole or not at all: it is written under a temporary
name and hard-linked into place, which fails if another process got there first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
from pathlib import Path

from eventtrigger.config import Secret, Settings, SettingsError
from eventtrigger.domain import keys

VARIABLE = "EVENTTRIGGER_BOOTSTRAP_KEY_FILE"
PREFIX = keys.KEY_PREFIX
SHOW_AGAIN = "docker compose exec api eventtrigger keys show-bootstrap"
# What `new_key` makes, and what an operator might reasonably put in the file instead:
# one token of printable characters, nothing that could be half a write or a stray file.
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


class BootstrapKeyError(SettingsError):
    """The key file cannot be used; the message names the path (a start-up error)."""

    def __init__(self, problem: str) -> None:
        super().__init__(VARIABLE, problem)


def key_file(settings: Settings) -> Path | None:
    """The file the api role takes its key from; None when it is not in play: unset, keys
    configured (they are the keys, the file is not even read), authentication off, or
    bootstrap keys disabled (managed keys took over)."""
    if (
        settings.bootstrap_key_file is None
        or settings.api_keys
        or not settings.auth_enabled
        or not settings.bootstrap_keys_enabled
    ):
        return None
    return settings.bootstrap_key_file


def show_refusal(settings: Settings) -> str | None:
    """Why `keys show-bootstrap` has no key file to show; None when it has one."""
    if settings.api_keys:
        return (
            "EVENTTRIGGER_API_KEYS is set, so the API keys are the ones it lists "
            f"(no bootstrap key is used and {VARIABLE} is ignored)"
        )
    if not settings.auth_enabled:
        return "EVENTTRIGGER_AUTH=disabled: the API takes no key"
    if not settings.bootstrap_keys_enabled:
        return "EVENTTRIGGER_BOOTSTRAP_KEYS=disabled: managed keys only (eventtrigger keys list)"
    if settings.bootstrap_key_file is None:
        return f"{VARIABLE} is not set, so there is no bootstrap key"
    return None


def parse_key(text: str, path: Path) -> str:
    """The key in a key file's `text`; BootstrapKeyError if it holds none."""
    key = text.strip()
    if not key:
        raise BootstrapKeyError(f"{path} is empty; delete it to have a new key made")
    if not _KEY.fullmatch(key):
        raise BootstrapKeyError(
            f"{path} does not hold a key (one token of 16-512 URL-safe characters); "
            "delete it to have a new key made"
        )
    return key


def new_key() -> str:
    """A key of the one format every generated key has (domain/keys.py)."""
    return keys.new_key()


def with_key(settings: Settings, key: str) -> Settings:
    """`settings` with `key` as the one API key: it authenticates like a configured key."""
    return dataclasses.replace(settings, api_keys=(Secret(key),))


def read(path: Path) -> str | None:
    """The key in `path`; None if there is no such file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as exc:
        raise BootstrapKeyError(f"cannot read {path}: {_reason(exc)}") from None
    return parse_key(text, path)


def obtain(path: Path) -> tuple[str, bool]:
    """The key in `path`, made and written there first if there is none: (key, whether
    this call made it). Safe against other processes doing the same at the same moment:
    exactly one key is written and all of them return it."""
    if (key := read(path)) is not None:
        return key, False
    key = new_key()
    try:
        # mkstemp creates the file with mode 0600, in the same directory (so the same
        # file system: os.link needs that) under a name no other process uses.
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise BootstrapKeyError(
            f"cannot create {path}: {_reason(exc)} (the directory must exist and be "
            "writable by this process)"
        ) from None
    try:
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(key + "\n")
                out.flush()
                os.fsync(out.fileno())
            # Unlike a rename, a link never replaces a file: the first process to link
            # wins, and any other finds the winner's complete file in place.
            os.link(temporary, path)
        except FileExistsError:
            winner = read(path)
            if winner is None:  # removed again in between: nothing sane to do
                raise BootstrapKeyError(f"{path} appeared and vanished while starting") from None
            return winner, False
        except OSError as exc:
            raise BootstrapKeyError(f"cannot create {path}: {_reason(exc)}") from None
        return key, True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
