"""Field-level validation errors, turned into problem+json by the API."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, e.g. "config.retry.max_attempts"; "" for the whole body
    message: str


class InvalidInput(ValueError):
    """One or more fields are wrong; `errors` lists every one we found."""

    def __init__(
        self, errors: list[FieldError], detail: str = "The request has invalid fields."
    ) -> None:
        super().__init__(detail)
        self.errors = errors
        self.detail = detail


def join_path(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """JSON path parts as a dotted field name: ["config", "headers", 3] -> config.headers[3]."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
