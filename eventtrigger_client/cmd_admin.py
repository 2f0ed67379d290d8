"""`keys create|list|revoke|self` (managed API keys) and `audit list` (who changed what)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from eventtrigger_client import common, render
from eventtrigger_client.api import ApiClient
from eventtrigger_client.common import OK, quote_id, show

SCOPES = "triggers:read, triggers:write, events:read, events:write, keys:admin or admin"


def add(sub: common.Subparsers, shared: argparse.ArgumentParser) -> common.Subparsers:
    """Add `keys` and `audit`; the `keys` subcommands, for the server's `show-bootstrap`."""
    keys = common.group(sub, "keys", "API keys: create, list, revoke; the one in use", shared)
    create = common.leaf(
        keys, "create", "make an API key (it is printed once: keep it)", _create, shared
    )
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        metavar="SCOPE",
        help=f"{SCOPES}; repeat for more",
    )
    create.add_argument("--expires-at", help="an RFC 3339 time after which it is refused")
    common.leaf(keys, "list", "list API keys (managed and bootstrap)", _list, shared)
    revoke = common.leaf(keys, "revoke", "revoke an API key for good", _revoke, shared, "key")
    revoke.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    common.leaf(keys, "self", "show the key this client calls with (name, scopes)", _self, shared)

    audit = common.group(
        sub, "audit", "read the audit trail of management changes (needs admin)", shared
    )
    listing = common.leaf(audit, "list", "list audit entries, newest first", _audit_list, shared)
    listing.add_argument("--target-id", help="only changes to this trigger, event or key")
    listing.add_argument("--key-id", help="only changes made with this API key")
    listing.add_argument(
        "--before", help="older than this RFC 3339 time, or a next_cursor of a previous page"
    )
    listing.add_argument("--limit", type=int, help="entries per page, 1-200 (server default 50)")
    listing.add_argument(
        "--all", action="store_true", help="follow next_cursor until the last page"
    )
    return keys


def _create(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    body: dict[str, Any] = {"name": args.name, "scopes": args.scopes}
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    made = client.request("POST", "/keys", body=body)
    if common.wants_table(args):
        # The key alone on stdout (for `KEY=$(...)`); what it is on stderr.
        print(made.get("key"), file=out)
        print(
            f"key {made.get('id')} {made.get('name')!r} "
            f"({', '.join(made.get('scopes') or [])}); it is shown only now",
            file=common.stderr(args),
        )
        return OK
    show(args, made, out, table=str, ids=lambda: [str(made.get("id", ""))])
    return OK


def _list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    page = client.request("GET", "/keys") or {}
    items: list[dict[str, Any]] = page.get("items") or []
    show(
        args,
        page,
        out,
        table=lambda: render.keys_table(items, common.now(), None),
        ids=lambda: [str(k.get("id", "")) for k in items],
    )
    return OK


def _revoke(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    question = f"Revoke API key {args.id}? Every call with it is refused from now on."
    common.confirm(args, "revoke", question, common.stderr(args))
    client.request("DELETE", f"/keys/{quote_id(args.id)}")
    common.done(args, out, f"revoked key {args.id}", args.id)
    return OK


def _self(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    key = client.request("GET", "/keys/self") or {}
    show(args, key, out, table=lambda: render.key_detail(key), ids=lambda: [str(key.get("id"))])
    return OK


def _audit_list(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return common.list_pages(
        args,
        client,
        out,
        "/audit",
        {"target_id": args.target_id, "key_id": args.key_id, "before": args.before},
        lambda items: render.audit_table(items, common.now(), None),
        cursor_param="before",
    )
