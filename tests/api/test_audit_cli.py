"""`eventtrigger audit list` end to end: the real CLI as a subprocess against the real API
process, checked against what GET /api/v1/audit answers."""

from __future__ import annotations

import json

import httpx

from eventtrigger.store.db import Database
from tests.api._support import create, trigger_body
from tests.e2e.test_cli import cli, ok
from tests.process import EventtriggerProcess


async def test_audit_list_pages_filters_and_names_bad_input(
    client: httpx.AsyncClient, server: EventtriggerProcess, db: Database
) -> None:
    async with db.connection() as tx:
        await tx.execute("DELETE FROM audit_log")
    made = [await create(client, trigger_body("webhook", name=f"t{n}")) for n in range(3)]
    expected = (await client.get("/api/v1/audit")).json()["items"]
    assert [i["target_id"] for i in expected] == [t["id"] for t in reversed(made)]
    url = server.base_url

    first = await cli(url, "audit", "list", "--limit", "2")
    lines = ok(first).splitlines()
    assert lines[0].split()[:4] == ["AT", "(UTC)", "ACTION", "TARGET"]
    assert [line.split()[3] for line in lines[1:]] == [i["target_id"] for i in expected[:2]]
    assert all(line.split()[2] == "trigger.create" for line in lines[1:])
    assert "--before " in first.stderr

    everything = json.loads(ok(await cli(url, "audit", "list", "--limit", "1", "--all", "--json")))
    assert everything == {"items": expected, "next_cursor": None}

    one = json.loads(ok(await cli(url, "audit", "list", "--target-id", made[0]["id"], "--json")))
    assert [i["id"] for i in one["items"]] == [expected[-1]["id"]]

    refused = await cli(url, "audit", "list", "--limit", "0")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert any(line.strip().startswith("limit:") for line in refused.stderr.splitlines())
