"""The `eventtrigger triggers ...` / `events ...` client end to end: the real CLI as a
subprocess against the real API process, checked against what the API itself answers.

Exit codes under test: 0 done, 1 the API refused (4xx), 2 bad usage, 3 server
unreachable or failing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import Sink, create_trigger
from tests.process import EventtriggerProcess, free_port

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {"type": "integer"}},
}


async def cli(
    url: str, *argv: str, key: str | None = TEST_API_KEY, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m eventtrigger.cli ARGV` with only the client's settings in its
    environment (no database or Kafka variables: the client must not need them), and
    stdin a pipe (`stdin`, or nothing): not a terminal, as in scripts."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventtrigger.cli", *argv],
        input=stdin or "",
        capture_output=True,
        text=True,
        env=client_env(url, key),
        timeout=60,
    )


def client_env(url: str, key: str | None) -> dict[str, str]:
    """This environment without the server's settings, with the client's; no profile file
    of this machine's user can change what a test sends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTTRIGGER_")}
    env.update(EVENTTRIGGER_URL=url, TZ="UTC", XDG_CONFIG_HOME="/nonexistent-eventtrigger-config")
    if key is not None:
        env["EVENTTRIGGER_API_KEY"] = key
    return env


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def column_starts(line: str, headers: list[str]) -> list[int]:
    return [line.index(h) for h in headers]


async def test_trigger_lifecycle_through_the_cli(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    tmp_path: Path,
) -> None:
    proc = launch()
    url = proc.base_url
    body_file = tmp_path / "tick.json"
    body_file.write_text(
        json.dumps(
            {
                "name": "hourly tick",
                "type": "interval_scheduled",
                "config": {"endpoint": sink.url("/tick"), "every": "1h", "payload": {"n": 1}},
            }
        )
    )
    async with api(proc) as client:
        # create -f FILE (JSON out) and create -f - (table out, from stdin)
        tick = json.loads(ok(await cli(url, "triggers", "create", "-f", str(body_file), "--json")))
        assert tick["name"] == "hourly tick"
        assert tick["next_fire_at"] is not None
        webhook_body = {
            "name": "orders",
            "type": "webhook",
            "config": {"endpoint": sink.url("/orders"), "schema": ORDER_SCHEMA},
        }
        shown = ok(await cli(url, "triggers", "create", "-f", "-", stdin=json.dumps(webhook_body)))
        fields = dict(line.split(": ", 1) for line in shown.splitlines() if ": " in line[:20])
        orders_id = fields["id"].strip()
        assert fields["type"].strip() == "webhook"
        assert fields["webhook url"].strip().startswith(url + "/api/v1/webhook/")

        # list: the table has both, newest first, in aligned columns; --json is the API's page
        table = ok(await cli(url, "triggers", "list")).splitlines()
        headers = ["ID", "NAME", "TYPE", "STATUS", "SCHEDULE"]
        starts = column_starts(table[0], headers)
        assert [line.split()[0] for line in table[1:]] == [orders_id, tick["id"]]
        for line in table[1:]:
            assert line[starts[3] - 2 : starts[3]] == "  "
            assert line[starts[3] :].split()[0] == "active"
        assert "every 1h" in table[2]
        listed = json.loads(ok(await cli(url, "triggers", "list", "--json")))
        assert listed == (await client.get("/api/v1/triggers")).json()
        assert [t["id"] for t in listed["items"]] == [orders_id, tick["id"]]
        filtered = json.loads(ok(await cli(url, "triggers", "list", "--type", "webhook", "--json")))
        assert [t["id"] for t in filtered["items"]] == [orders_id]

        # get: table and --json
        got = json.loads(ok(await cli(url, "triggers", "get", tick["id"], "--json")))
        assert got == (await client.get(f"/api/v1/triggers/{tick['id']}")).json()
        detail = ok(await cli(url, "triggers", "get", tick["id"]))
        assert "name:           hourly tick" in detail
        assert "schedule:       every 1h" in detail
        assert '"every": "1h"' in detail

        # pause / resume
        paused = ok(await cli(url, "triggers", "pause", tick["id"]))
        assert paused.strip() == f"{tick['id']} 'hourly tick': paused"
        assert (await client.get(f"/api/v1/triggers/{tick['id']}")).json()["status"] == "paused"
        resumed = ok(await cli(url, "triggers", "resume", tick["id"], "--json"))
        assert json.loads(resumed)["status"] == "active"
        assert (await client.get(f"/api/v1/triggers/{tick['id']}")).json()["status"] == "active"

        # test with --payload: the event reaches success, seen through `events get`
        fired = ok(await cli(url, "triggers", "test", orders_id, "--payload", '{"order_id": 7}'))
        event_id = fired.split()[2]
        assert fired.startswith(f"test event {event_id} fired")
        [delivery] = await sink.wait_for("/orders", 1, timeout=30)
        assert delivery.json() == {"order_id": 7}
        for _ in range(100):
            event = json.loads(ok(await cli(url, "events", "get", event_id, "--json")))
            if event["status"] == "success":
                break
            await asyncio.sleep(0.2)
        # -o json: the API's event, with its delivery attempts added
        attempts = event.pop("delivery_attempts")
        assert event == (await client.get(f"/api/v1/events/{event_id}")).json()
        assert attempts == (await client.get(f"/api/v1/events/{event_id}/attempts")).json()["items"]
        assert event["status"] == "success"
        assert event["source"] == "manual-test"
        shown = ok(await cli(url, "events", "get", event_id))
        assert "status:           success" in shown
        assert "last status code: 200" in shown
        events = ok(await cli(url, "events", "list", "--trigger-id", orders_id)).splitlines()
        assert events[0].split()[:4] == ["ID", "TRIGGER", "SOURCE", "STATUS"]
        # the trigger's name, not its id
        assert events[1].split()[:6] == [event_id, "orders", "manual-test", "success", "1", "200"]
        by_status = json.loads(
            ok(await cli(url, "events", "list", "--status", "failure", "--json"))
        )
        assert by_status == {"items": [], "next_cursor": None}

        # replay: 202 where the server has it; otherwise its 404/405 problem, said plainly
        replayed = await cli(url, "events", "replay", event_id)
        if replayed.returncode == 0:
            assert replayed.stdout.startswith("replayed as event ")
        else:
            assert replayed.returncode == 1, replayed
            assert replayed.stderr.startswith(("eventtrigger: 404 ", "eventtrigger: 405 "))
            assert "no replay endpoint" in replayed.stderr

        # delete, then the trigger is gone (404: exit 1) and its event log stays
        assert ok(await cli(url, "triggers", "delete", tick["id"], "--yes")).strip() == (
            f"deleted trigger {tick['id']}"
        )
        gone = await cli(url, "triggers", "get", tick["id"])
        assert gone.returncode == 1
        assert gone.stdout == ""
        assert gone.stderr.startswith("eventtrigger: 404 Not Found: ")
        ok(await cli(url, "triggers", "delete", orders_id, "--yes"))
        ok(await cli(url, "events", "get", event_id))


async def test_errors_and_paging_through_the_cli(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    url = proc.base_url

    # 400: exit 1, the problem's detail and one line per field error, nothing on stdout
    invalid = {"name": "", "type": "cron_scheduled", "config": {"endpoint": "ftp://x"}}
    refused = await cli(url, "triggers", "create", "-f", "-", stdin=json.dumps(invalid))
    assert refused.returncode == 1
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert lines[0] == "eventtrigger: 400 Bad Request: The request has invalid fields."
    assert {line.split(":")[0].strip() for line in lines[1:]} >= {
        "name",
        "config.endpoint",
        "config.cron",
    }

    # 401: a wrong key, and no key at all (with a hint)
    wrong = await cli(url, "triggers", "list", key="not-the-key")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("eventtrigger: 401 Unauthorized: ")
    missing = await cli(url, "triggers", "list", key=None)
    assert missing.returncode == 1
    assert "set EVENTTRIGGER_API_KEY or pass --api-key" in missing.stderr
    # --api-key wins over the environment
    ok(await cli(url, "triggers", "list", "--api-key", TEST_API_KEY, key="not-the-key"))

    # bad usage: 2, before any request
    assert (await cli(url, "triggers", "test", "x", "--payload", "{")).returncode == 2
    assert (await cli(url, "triggers", "frob")).returncode == 2

    # unreachable: 3
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = await cli(nobody, "events", "list")
    assert unreachable.returncode == 3
    assert unreachable.stderr.startswith(f"eventtrigger: cannot reach the API: {nobody}")

    # paging: one page shows a cursor hint; --all follows next_cursor to the end
    async with api(proc) as client:
        for n in range(5):
            await create_trigger(
                client,
                "webhook",
                {"endpoint": sink.url("/p"), "schema": {"type": "object"}},
                name=f"t{n}",
            )
        everything = (await client.get("/api/v1/triggers", params={"limit": 500})).json()
    expected = [t["id"] for t in everything["items"]]
    assert len(expected) == 5

    first = await cli(url, "triggers", "list", "--limit", "2")
    assert [line.split()[0] for line in ok(first).splitlines()[1:]] == expected[:2]
    assert "--cursor " in first.stderr
    page = json.loads(ok(await cli(url, "triggers", "list", "--limit", "2", "--json")))
    second = json.loads(
        ok(await cli(url, "triggers", "list", "--limit", "2", "--cursor", page["next_cursor"],
                     "--json"))
    )  # fmt: skip
    assert [t["id"] for t in second["items"]] == expected[2:4]

    joined = json.loads(ok(await cli(url, "triggers", "list", "--limit", "2", "--all", "--json")))
    assert joined == {"items": everything["items"], "next_cursor": None}
    table = await cli(url, "triggers", "list", "--limit", "2", "--all")
    assert [line.split()[0] for line in ok(table).splitlines()[1:]] == expected
    assert table.stderr == ""

    # a bad filter value is the server's 400, shown with its field
    bad_limit = await cli(url, "events", "list", "--limit", "0")
    assert bad_limit.returncode == 1
    assert "  limit: " in bad_limit.stderr
