"""`/api/v1/keys`: managed API keys, made, listed and revoked over the API.

A new key is shown once, in the 201 of its create; the database keeps only its hash
and prefix. The list shows the bootstrap keys too (`"bootstrap": true`, while they are
enabled): they are configured, not made here, so they cannot be revoked here either.
Revoking is permanent and every process refuses the key within a second (auth.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain import keys as domain
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.times import iso
from eventtrigger.ids import looks_like_id, new_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.audit import entry_for
from eventtrigger.roles.api.auth import Guard
from eventtrigger.roles.api.http import json_response, read_json
from eventtrigger.roles.api.principal import principal_of
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import audit
from eventtrigger.store import keys as store
from eventtrigger.store.db import Tx


def _time(value: Any) -> str | None:
    return None if value is None else iso(value)


def key_json(key: domain.StoredKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "expires_at": _time(key.expires_at),
        "last_used_at": _time(key.last_used_at),
        "bootstrap": False,
    }


class KeyRoutes:
    def __init__(self, res: Resources, guard: Guard) -> None:
        self.res = res
        self.guard = guard

    async def create(self, request: Request) -> Response:
        body = await read_json(request, self.res.settings.max_body_bytes)
        now = self.res.clock.now()
        try:
            new = domain.validate_create(body, now)
        except InvalidInput as exc:
            raise Problem(400, exc.detail, exc.errors) from None
        caller = principal_of(request)
        if beyond := sorted(s for s in new.scopes if not caller.allows(s)):
            # keys:admin manages keys; it must not mint a key stronger than itself.
            raise Problem(
                403,
                f"A key can grant only scopes it holds; this one lacks {', '.join(beyond)}.",
            )
        key = domain.new_key()
        stored = domain.StoredKey(
            id=new_id(now),
            name=new.name,
            scopes=frozenset(new.scopes),
            prefix=domain.prefix_of(key),
            created_at=now,
            expires_at=new.expires_at,
            last_used_at=None,
            revoked_at=None,
        )

        fields = ["name", "scopes", *(["expires_at"] if new.expires_at is not None else [])]
        entry = entry_for(request, "key.create", stored.id, fields, at=now)

        async def work(tx: Tx) -> None:
            await store.insert(tx, stored, domain.key_hash(key))
            await audit.record(tx, entry)  # in the same transaction: both or neither

        await self.res.db.run(work)
        created = key_json(stored)
        body_out = {k: created[k] for k in ("id", "name", "scopes", "prefix", "created_at")}
        body_out |= {"expires_at": created["expires_at"], "key": key}
        return json_response(body_out, 201, {"Location": f"/api/v1/keys/{stored.id}"})

    async def list(self, request: Request) -> Response:
        items: list[dict[str, Any]] = []
        if self.res.settings.bootstrap_keys_enabled:
            for known in self.guard.bootstrap:
                principal = known.principal
                items.append(
                    {
                        "id": principal.key_id,
                        "name": principal.key_name,
                        "scopes": sorted(principal.scopes),
                        "prefix": known.prefix,
                        "created_at": None,
                        "expires_at": None,
                        "last_used_at": None,
                        "bootstrap": True,
                    }
                )
        items += [key_json(k) for k in await store.live(self.res.db)]
        return json_response({"items": items})

    async def self_(self, request: Request) -> Response:
        principal = principal_of(request)
        return json_response(
            {
                "id": principal.key_id,
                "name": principal.key_name,
                "scopes": sorted(principal.scopes),
                "prefix": getattr(request.state, "key_prefix", ""),
                "bootstrap": principal.bootstrap,
            }
        )

    async def delete(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        if any(b.principal.key_id == key_id for b in self.guard.bootstrap):
            raise Problem(
                409,
                "A bootstrap key is configuration, not revocable here: remove it from "
                "EVENTTRIGGER_API_KEYS (or its key file), or set "
                "EVENTTRIGGER_BOOTSTRAP_KEYS=disabled.",
            )
        if not looks_like_id(key_id):
            raise Problem(404, f"No key with id {key_id!r}.")
        now = self.res.clock.now()

        entry = entry_for(request, "key.revoke", key_id, [], at=now)

        async def work(tx: Tx) -> bool:
            revoked = await store.revoke(tx, key_id, now)
            if revoked:
                await audit.record(tx, entry)  # in the same transaction: both or neither
            return revoked

        if not await self.res.db.run(work):
            raise Problem(404, f"No key with id {key_id!r}.")
        self.guard.forget_cached()  # this process refuses it at once; others within 1 s
        return Response(status_code=204)
