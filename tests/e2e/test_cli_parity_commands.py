"""The CLI's commands beyond list/get/create end to end: the real CLI as a subprocess
against the real API process (MariaDB, Kafka, a worker delivering to a local sink),
checked against what the API itself answers.

update, rotate-secret, rotate-url, test --wait (a success and a failing endpoint),
events attempts, replay --bulk, events tail, stats, aggregate, test-run, the refusal to
delete without --yes off a terminal, and the yaml and ids outputs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import Sink, fire_webhook, wait_for_event
from tests.e2e.test_cli import cli, client_env, ok
from tests.process import EventtriggerProcess

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {"type": "integer"}},
}


async def create_webhook(url: str, sink: Sink, name: str, path: str, *flags: str) -> dict[str, Any]:
    """`triggers create` from flags alone: a webhook trigger delivering to `path`."""
    created = await cli(
        url, "triggers", "create", "--name", name, "--type", "webhook",
        "--endpoint", sink.url(path), "--schema", json.dumps(ORDER_SCHEMA), *flags, "-o", "json",
    )  # fmt: skip
    trigger: dict[str, Any] = json.loads(ok(created))
    return trigger


async def test_update_rotations_outputs_and_delete_refusal(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    tmp_path: Path,
) -> None:
    proc = launch()
    url = proc.base_url
    async with api(proc) as client:
        orders = await create_webhook(url, sink, "orders", "/orders")
        trigger_id = orders["id"]
        assert orders["config"]["schema"] == ORDER_SCHEMA

        # update from flags: only those fields change; the rest of the config stays
        ok(await cli(url, "triggers", "update", trigger_id, "--name", "orders v2",
                     "--header", "X-Team: billing", "--retries", "2"))  # fmt: skip
        got = (await client.get(f"/api/v1/triggers/{trigger_id}")).json()
        assert got["name"] == "orders v2"
        assert got["config"]["headers"] == {"X-Team": "billing"}
        assert got["config"]["retry"]["max_attempts"] == 2
        assert got["config"]["schema"] == ORDER_SCHEMA
        assert got["config"]["endpoint"] == sink.url("/orders")

        # update from a YAML document on stdin, with a flag over it
        patch = "status: paused\nconfig:\n  endpoint: {}\n  schema: {{}}\n".format(
            sink.url("/moved")
        )
        shown = ok(await cli(url, "triggers", "update", trigger_id, "-f", "-", "--method", "PUT",
                             "-o", "yaml", stdin=patch))  # fmt: skip
        got = (await client.get(f"/api/v1/triggers/{trigger_id}")).json()
        assert yaml.safe_load(shown) == got  # -o yaml: the API's answer
        assert got["status"] == "paused"
        assert got["config"]["endpoint"] == sink.url("/moved")
        assert got["config"]["method"] == "PUT"
        assert got["config"]["schema"] == {}
        ok(await cli(url, "triggers", "resume", trigger_id))

        # rotate-secret: the new secret alone on stdout; the API signs with it from now on
        rotated = await cli(url, "triggers", "rotate-secret", trigger_id, "--grace", "1h")
        secret = ok(rotated).strip()
        assert secret.startswith("whsec_")
        assert secret != orders["signing_secret"]
        assert "shown only now" in rotated.stderr
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).json()[
            "signing_secret"
        ] == secret

        # rotate-url: the new URL alone on stdout; the old one is 404 at once
        new_url = ok(await cli(url, "triggers", "rotate-url", trigger_id)).strip()
        assert new_url != orders["webhook_url"]
        assert new_url.startswith(url + "/api/v1/webhook/")
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.post(orders["webhook_url"], json={})).status_code == 404
        await fire_webhook(new_url, {"order_id": 1})

        # -o ids: one id a line, for `xargs`
        other = await create_webhook(url, sink, "refunds", "/refunds")
        listed = ok(await cli(url, "triggers", "list", "-o", "ids")).splitlines()
        assert listed == [other["id"], trigger_id]

        # delete off a terminal without --yes: refused, nothing deleted
        refused = await cli(url, "triggers", "delete", trigger_id)
        assert refused.returncode == 2
        assert refused.stdout == ""
        assert refused.stderr == (
            "eventtrigger: refusing to delete without --yes when not on a terminal\n"
        )
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).status_code == 200
        assert ok(await cli(url, "triggers", "delete", trigger_id, "--yes", "-o", "ids")) == (
            f"{trigger_id}\n"
        )
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).status_code == 404


async def test_test_wait_reports_success_and_failure_with_attempts(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    url = proc.base_url
    sink.respond("/broken", (500, {"X-Why": "broken"}, 0.0))
    good = await create_webhook(url, sink, "good", "/good")
    bad = await create_webhook(
        url, sink, "bad", "/broken", "--retries", "2", "--retry-delay", "100ms"
    )

    delivered = await cli(url, "triggers", "test", good["id"], "--payload", '{"order_id": 1}',
                          "--wait")  # fmt: skip
    lines = ok(delivered).splitlines()
    assert lines[0].startswith("event ")
    assert " for good (" in lines[0]
    assert ": success after 1 attempt, last status code 200" in lines[0]
    assert lines[1].startswith("ATTEMPT")
    assert lines[2].split()[0] == "1"
    assert "waiting for its outcome" in delivered.stderr
    [received] = sink.at("/good")
    assert received.json() == {"order_id": 1}

    failed = await cli(url, "triggers", "test", bad["id"], "--payload", '{"order_id": 2}',
                       "--wait", "--wait-timeout", "60", "-o", "json")  # fmt: skip
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    outcome = json.loads(failed.stdout)
    event_id = outcome["event"]["id"]
    assert outcome["event"]["status"] == "failure"
    assert [a["status_code"] for a in outcome["attempts"]] == [500, 500]

    async with api(proc) as client:
        from_api = (await client.get(f"/api/v1/events/{event_id}/attempts")).json()
        # events attempts: the API's list as JSON; a row per attempt in the table
        assert json.loads(ok(await cli(url, "events", "attempts", event_id, "--json"))) == (
            from_api
        )
        table = ok(await cli(url, "events", "attempts", event_id)).splitlines()
        assert table[0].split()[:4] == ["ATTEMPT", "STARTED", "(UTC)", "DURATION"]
        assert [(row.split()[0], row.split()[4]) for row in table[1:]] == [
            ("1", "500"),
            ("2", "500"),
        ]
        # events get -o json: the event with its attempts (request sent, response headers)
        shown = json.loads(ok(await cli(url, "events", "get", event_id, "-o", "json")))
        assert shown["delivery_attempts"] == from_api["items"]
        assert shown["status"] == "failure"


async def test_bulk_replay_stats_aggregate_and_test_run(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    url = proc.base_url
    orders = await create_webhook(url, sink, "orders", "/orders")
    fired = [await fire_webhook(orders["webhook_url"], {"order_id": n}) for n in (1, 2)]
    for event_id in fired:
        await wait_for_event(db, event_id)

    # bulk replay: off a terminal it needs --yes; with it, every match replays
    refused = await cli(url, "events", "replay", "--bulk", "--trigger-id", orders["id"])
    assert refused.returncode == 2
    assert "refusing to replay without --yes" in refused.stderr
    dry = await cli(url, "events", "replay", "--bulk", "--trigger-id", orders["id"],
                    "--dry-run", "-o", "ids")  # fmt: skip
    assert ok(dry).splitlines() == fired  # oldest first, as the replay takes them
    assert "2 event(s) would be replayed" in dry.stderr
    replayed = json.loads(
        ok(await cli(url, "events", "replay", "--bulk", "--trigger-id", orders["id"],
                     "--status", "success", "--yes", "--json"))
    )  # fmt: skip
    assert len(replayed["event_ids"]) == 2
    async with api(proc) as client:
        for new_id, original in zip(replayed["event_ids"], fired, strict=True):
            event = (await client.get(f"/api/v1/events/{new_id}")).json()
            assert (event["source"], event["replay_of"]) == ("replay", original)
        for new_id in replayed["event_ids"]:
            await wait_for_event(db, new_id)  # the counts below stay as they are

        # stats: the API's figures as they are (-o json), a table of them by default
        figures = json.loads(ok(await cli(url, "stats", "-o", "json")))
        assert set(figures) == set((await client.get("/api/v1/stats")).json())
        table = ok(await cli(url, "stats"))
        assert table.splitlines()[1].split() == ["FIGURE", "VALUE"]
        assert "triggers.total" in table
        series = json.loads(ok(await cli(url, "stats", "--series", "1h", "--json")))
        assert series["range"] == "1h"
        assert len(series["points"]) == 60

        # aggregate: per trigger, by name; -o json is the API's page
        from_api = (await client.get("/api/v1/events", params={"aggregate": "trigger"})).json()
        assert json.loads(ok(await cli(url, "aggregate", "--json"))) == from_api
        rows = ok(await cli(url, "aggregate")).splitlines()
        assert rows[1].split()[:2] == ["orders", "webhook"]
        assert ok(await cli(url, "aggregate", "-o", "ids")).split() == [orders["id"]]

    # test-run from flags, waited for: delivered once, nothing stored but the event
    run = await cli(url, "test-run", "--type", "webhook", "--endpoint", sink.url("/trial"),
                    "--payload", '{"trial": true}', "--wait")  # fmt: skip
    assert "test run: success after 1 attempt" in ok(run).splitlines()[0]
    [trial] = sink.at("/trial")
    assert trial.json() == {"trial": True}


async def test_tail_follows_new_events_until_interrupted(
    launch: Callable[..., EventtriggerProcess],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    url = proc.base_url
    orders = await create_webhook(url, sink, "orders", "/orders")
    other = await create_webhook(url, sink, "other", "/other")
    tail = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventtrigger.cli", "events", "tail", "--trigger-id", orders["id"],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=client_env(url, TEST_API_KEY),
    )  # fmt: skip
    assert tail.stdout is not None and tail.stderr is not None
    try:
        opened = await asyncio.wait_for(tail.stderr.readline(), 30)
        assert opened.decode() == "following new events (Ctrl-C stops)\n"
        fired = [await fire_webhook(orders["webhook_url"], {"order_id": n}) for n in (1, 2)]
        await fire_webhook(other["webhook_url"], {"order_id": 3})  # filtered out
        # One line per message (a new event, then each change of it); each names the
        # trigger; stop once both events were seen delivered.
        delivered: set[str] = set()
        seen: set[str] = set()
        while delivered != set(fired):
            line = (await asyncio.wait_for(tail.stdout.readline(), 30)).decode()
            assert line, "tail ended early"
            _, _, event_id, name, source, status, *_ = line.split()
            assert (name, source) == ("orders", "api")
            assert event_id in fired
            seen.add(event_id)
            if status == "success":
                delivered.add(event_id)
        assert seen == set(fired)
    finally:
        if tail.returncode is None:
            tail.send_signal(signal.SIGINT)  # Ctrl-C
        code = await asyncio.wait_for(tail.wait(), 30)
    assert code == 130
    assert b"Traceback" not in await tail.stderr.read()


async def test_tail_survives_a_server_restart(
    launch: Callable[..., EventtriggerProcess],
    sink: Sink,
    db: Database,
) -> None:
    """The API process stops (the stream ends, then connections are refused) and starts
    again on the same port: tail says so on stderr, reconnects, and shows new events."""
    proc = launch()
    url = proc.base_url
    orders = await create_webhook(url, sink, "orders", "/orders")
    tail = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventtrigger.cli", "events", "tail", "--trigger-id", orders["id"],
        "-o", "ids",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=client_env(url, TEST_API_KEY),
    )  # fmt: skip
    assert tail.stdout is not None and tail.stderr is not None
    said_pipe, shown_pipe = tail.stderr, tail.stdout

    async def stderr_until(text: str) -> list[str]:
        lines: list[str] = []
        while not lines or text not in lines[-1]:
            line = (await asyncio.wait_for(said_pipe.readline(), 60)).decode()
            assert line, ("tail ended", lines)
            lines.append(line)
        return lines

    async def stdout_until(event_id: str) -> None:
        while True:
            line = (await asyncio.wait_for(shown_pipe.readline(), 60)).decode()
            assert line, "tail ended early"
            if line.strip() == event_id:
                return

    try:
        await stderr_until("following new events")
        before = await fire_webhook(orders["webhook_url"], {"order_id": 1})
        await stdout_until(before)
        await asyncio.to_thread(proc.stop)
        outage = await stderr_until("reconnecting")
        await asyncio.to_thread(proc.start)
        back = await stderr_until("reconnected")
        after = await fire_webhook(orders["webhook_url"], {"order_id": 2})
        await stdout_until(after)
        assert tail.returncode is None  # still following: the outage did not end it
    finally:
        if tail.returncode is None:
            tail.send_signal(signal.SIGINT)  # Ctrl-C
        code = await asyncio.wait_for(tail.wait(), 30)
    assert code == 130
    said = "".join(outage + back)
    assert said.count("reconnecting") == 1  # once per outage, not once per attempt
    assert "events list --since" in said
    assert b"Traceback" not in await tail.stderr.read()
