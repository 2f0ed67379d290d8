"""Run a request body against its JSON Schema and report every offending field path."""

from __future__ import annotations

import difflib
import re
from typing import Any

import jsonschema_rs

from eventtrigger.domain.errors import FieldError, join_path
from eventtrigger.domain.schemas import Schema


class BodyValidator:
    """A compiled jsonschema-rs validator whose errors name fields, not schema keywords."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._validator = jsonschema_rs.validator_for(schema, offline=True)

    def errors(self, instance: Any, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
        found: list[FieldError] = []
        for error in self._validator.iter_errors(instance):
            path = (*prefix, *error.instance_path)
            kind = error.kind
            if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
                known = self._known_properties(list(error.instance_path))
                for name in kind.unexpected:
                    found.append(FieldError(join_path((*path, name)), _unknown(name, known)))
            elif isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
                found.append(FieldError(join_path((*path, kind.property)), "is required"))
            else:
                found.append(FieldError(join_path(path), error.message))
        return found

    def _known_properties(self, path: list[str | int]) -> list[str]:
        node: Any = self._schema
        for part in path:
            props = node.get("properties", {}) if isinstance(node, dict) else {}
            node = props.get(part, {}) if isinstance(part, str) else {}
        return list(node.get("properties", {})) if isinstance(node, dict) else []


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}"


_DRAFTS = re.compile(
    r"^https?://json-schema\.org/(draft-0[467]|draft/2019-09|draft/2020-12)/schema#?$"
)


def _draft(uri: str) -> str | None:
    match = _DRAFTS.match(uri)
    return match[1] if match else None


def user_schema_errors(schema: Any, field: str) -> list[FieldError]:
    """A webhook trigger's own JSON Schema: valid against its meta-schema and compilable."""
    # An unknown `$schema` would make jsonschema-rs fetch it over the network (SSRF).
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is not None and (not isinstance(dialect, str) or _draft(dialect) is None):
        return [FieldError(f"{field}.$schema", "use a draft 4, 6, 7, 2019-09 or 2020-12 URI")]
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        where = join_path((field, *exc.instance_path))
        return [FieldError(where, f"not a valid JSON Schema: {exc.message}")]
    except jsonschema_rs.ReferencingError as exc:
        return [FieldError(field, f"unresolvable reference: {exc}")]
    try:
        jsonschema_rs.validator_for(schema, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        message = getattr(exc, "message", str(exc)).splitlines()[0]
        return [FieldError(field, f"cannot be compiled: {message}")]
    return []


# MariaDB refuses JSON documents nested deeper than 32 levels (json_valid); payloads and
# schemas stay well inside that, with room for the config object around them.
MAX_JSON_DEPTH = 30


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value: a scalar is 0, `[]` or `{}` is 1."""
    depth, level = 0, [(value, 0)]
    while level:
        item, d = level.pop()
        if isinstance(item, dict | list):
            d += 1
            depth = max(depth, d)
            level.extend(
                (child, d) for child in (item.values() if isinstance(item, dict) else item)
            )
    return depth


def depth_errors(value: Any, field: str) -> list[FieldError]:
    if json_depth(value) > MAX_JSON_DEPTH:
        return [FieldError(field, f"is nested deeper than {MAX_JSON_DEPTH} levels")]
    return []
