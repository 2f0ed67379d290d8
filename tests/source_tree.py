"""Files of the source checkout that some tests read besides the code under test.

`make test` runs in a checkout, where they all exist. The container's test image and the
floors check (scripts/check-floors.sh) carry only the tests and the installed package;
there, a test of the checkout itself (generated docs up to date, a doc page's command)
has nothing to check, so it skips and says which file it needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require(*relative: str) -> Path:
    """ROOT, after skipping the calling module unless every one of `relative` exists."""
    missing = [name for name in relative if not (ROOT / name).exists()]
    if missing:
        pytest.skip(
            f"needs the source checkout ({', '.join(missing)} is not here); `make test` runs it",
            allow_module_level=True,
        )
    return ROOT
