"""Who is calling the management API: the key a request was authenticated with.

The auth layer puts one `Principal` on `request.state.principal` for every authenticated
request; handlers read it to check scopes and to sign audit rows with the key's id and
name. Keys from `EVENTTRIGGER_API_KEYS` (and the generated bootstrap key) are `admin`
bootstrap keys; with auth disabled every request acts as `ANONYMOUS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

SCOPES = (
    "triggers:read",
    "triggers:write",
    "events:read",
    "events:write",
    "keys:admin",
    "admin",
)


@dataclass(frozen=True)
class Principal:
    key_id: str
    key_name: str
    scopes: frozenset[str]
    bootstrap: bool = False

    def allows(self, scope: str) -> bool:
        """`admin` holds every scope."""
        return "admin" in self.scopes or scope in self.scopes


ANONYMOUS = Principal(key_id="anonymous", key_name="auth disabled", scopes=frozenset({"admin"}))


def principal_of(request: Request) -> Principal:
    """The caller of an authenticated request (ANONYMOUS where auth is off)."""
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else ANONYMOUS
