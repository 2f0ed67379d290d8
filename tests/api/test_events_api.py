"""GET /api/v1/events (views, filters, cursor pages), GET /api/v1/events/{id} and
GET /api/v1/events?aggregate=trigger, over the real `--roles=api` process with the default
windows (active 2 h, total 48 h). Events are written straight into the database with
fired times in the past; archived ones are also put in event_logs_archive with SQL."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.ids import new_id
from eventtrigger.store.db import Database
from eventtrigger.store.events import in_list, insert_events
from eventtrigger.store.queries import Q
from tests.api._support import (
    ODD_IDS,
    TRIGGERS,
    UNKNOWN_ID,
    assert_invalid,
    assert_problem,
    create,
    iso,
    parse_time,
    trigger_body,
)
from tests.conftest import TEST_API_KEY

EVENTS = "/api/v1/events"
EVENT_KEYS = {
    "id",
    "trigger_id",
    "trigger_type",
    "source",
    "is_test_run",
    "note",
    "replay_of",
    "scheduled_at",
    "fired_at",
    "payload",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "delivered_at",
    "retention",
    "created_at",
    "updated_at",
}
H = timedelta(hours=1)
M = timedelta(minutes=1)
OUTCOMES: dict[str, dict[str, Any]] = {
    "pending": {"attempts": 0, "last_status_code": None, "last_error": None},
    "retrying": {"attempts": 2, "last_status_code": 503, "last_error": "HTTP 503"},
    "success": {"attempts": 1, "last_status_code": 200, "last_error": None},
    "failure": {"attempts": 5, "last_status_code": 500, "last_error": "HTTP 500"},
}


@dataclass(frozen=True)
class Ev:
    id: str
    fired_at: datetime
    trigger_id: str | None
    status: str
    archived_table: bool


async def add(
    db: Database,
    ago: timedelta,
    *,
    trigger_id: str | None = None,
    trigger_type: str = "webhook",
    source: str = "api",
    is_test_run: bool = False,
    status: str = "pending",
    payload: Any = None,
    in_archive: bool = False,
) -> Ev:
    """One event fired `ago` before now, with `status`; in the archive table if asked."""
    now = datetime.now(UTC)
    fired_at = now - ago
    event = NewEvent(
        id=new_id(fired_at),
        trigger_id=trigger_id,
        trigger_type=trigger_type,
        source=source,
        scheduled_at=fired_at - timedelta(milliseconds=250),
        fired_at=fired_at,
        payload=payload,
        request={
            "url": "https://example.com/hook",
            "method": "POST",
            "headers": {},
            "timeout": "10s",
            "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
            "signing_secret": "whsec_c2VjcmV0",
        },
        next_attempt_at=fired_at + timedelta(seconds=30),
        is_test_run=is_test_run,
        note="test run" if is_test_run else None,
    )
    outcome = OUTCOMES[status]
    async with db.transaction() as tx:
        await insert_events(tx, [event], now)
        await tx.execute(
            "UPDATE event_logs SET status = %s, attempts = %s, last_status_code = %s,"
            " last_error = %s, delivered_at = %s WHERE id = %s",
            (
                status,
                outcome["attempts"],
                outcome["last_status_code"],
                outcome["last_error"],
                fired_at + timedelta(seconds=1) if status == "success" else None,
                event.id,
            ),
        )
        if in_archive:
            await tx.execute(in_list(Q["retention.copy_to_archive"], [event.id]), [event.id])
            await tx.execute(in_list(Q["retention.delete_moved"], [event.id]), [event.id])
    return Ev(event.id, fired_at, trigger_id, status, in_archive)


async def list_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    for item in body["items"]:
        assert set(item) == EVENT_KEYS, item
    return [item["id"] for item in body["items"]]


async def list_items(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def in_table(db: Database, table: str, event_id: str) -> bool:
    async with db.connection() as tx:
        return await tx.fetch_one(f"SELECT id FROM {table} WHERE id = %s", (event_id,)) is not None


async def views_scenario(db: Database) -> dict[str, Ev]:
    """Events across both views and beyond the total window, in both tables."""
    return {
        "a1": await add(db, 1 * M, status="success"),
        "a2": await add(db, 30 * M, status="retrying"),
        "a3": await add(db, 110 * M, status="pending"),
        "hot_archived": await add(db, 3 * H, status="retrying"),  # still in the hot table
        "moved": await add(db, 5 * H, status="success", in_archive=True),
        "moved_older": await add(db, 40 * H, status="failure", in_archive=True),
        "gone_hot": await add(db, 49 * H, status="success"),
        "gone_archive": await add(db, 50 * H, status="success", in_archive=True),
    }


# ---- list: views --------------------------------------------------------------------------


async def test_list_defaults_to_the_active_view_newest_first(
    client: httpx.AsyncClient, db: Database
) -> None:
    ev = await views_scenario(db)
    response = await client.get(EVENTS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["next_cursor"] is None
    assert [i["id"] for i in body["items"]] == [ev["a1"].id, ev["a2"].id, ev["a3"].id]
    assert {i["retention"] for i in body["items"]} == {"active"}
    assert await list_ids(client, view="active") == [ev["a1"].id, ev["a2"].id, ev["a3"].id]

    first = body["items"][0]
    assert first["status"] == "success" and first["attempts"] == 1
    assert first["last_status_code"] == 200 and first["last_error"] is None
    assert parse_time(first["fired_at"]) == ev["a1"].fired_at
    assert parse_time(first["delivered_at"]) == ev["a1"].fired_at + timedelta(seconds=1)
    assert first["source"] == "api" and first["is_test_run"] is False


async def test_archived_view_lists_both_tables_and_nothing_past_the_total_window(
    client: httpx.AsyncClient, db: Database
) -> None:
    ev = await views_scenario(db)
    items = await list_items(client, view="archived")
    assert [i["id"] for i in items] == [
        ev["hot_archived"].id,
        ev["moved"].id,
        ev["moved_older"].id,
    ]
    assert {i["retention"] for i in items} == {"archived"}
    assert [i["status"] for i in items] == ["retrying", "success", "failure"]
    # The expired events are still physically there, yet listed nowhere.
    assert await in_table(db, "event_logs", ev["gone_hot"].id)
    assert await in_table(db, "event_logs_archive", ev["gone_archive"].id)
    everything = await list_ids(client, view="active") + await list_ids(client, view="archived")
    assert ev["gone_hot"].id not in everything and ev["gone_archive"].id not in everything


# ---- list: filters ------------------------------------------------------------------------


async def filters_scenario(db: Database) -> tuple[str, str, dict[str, Ev]]:
    t1, t2 = new_id(datetime.now(UTC)), new_id(datetime.now(UTC))
    ev = {
        "e1": await add(db, 1 * M, trigger_id=t1, status="success"),
        "e2": await add(
            db, 2 * M, trigger_id=t1, source="manual-test", is_test_run=True, status="pending"
        ),
        "e3": await add(
            db,
            3 * M,
            trigger_id=t2,
            trigger_type="cron_scheduled",
            source="scheduled",
            status="failure",
        ),
        "e5": await add(db, 4 * M, source="manual-test", is_test_run=True, status="retrying"),
        "e4": await add(
            db,
            3 * H,
            trigger_id=t2,
            trigger_type="cron_scheduled",
            source="scheduled",
            status="success",
            in_archive=True,
        ),
        "e6": await add(db, 49 * H, trigger_id=t1, status="success"),  # past the total window
    }
    return t1, t2, ev


async def test_list_filters(client: httpx.AsyncClient, db: Database) -> None:
    t1, t2, ev = await filters_scenario(db)

    def ids(*names: str) -> list[str]:
        return [ev[n].id for n in names]

    assert await list_ids(client) == ids("e1", "e2", "e3", "e5")
    assert await list_ids(client, trigger_id=t1) == ids("e1", "e2")
    assert await list_ids(client, trigger_id=t2) == ids("e3")
    assert await list_ids(client, trigger_id=t2, view="archived") == ids("e4")
    assert await list_ids(client, trigger_id=t1, view="archived") == []  # e6 is gone
    assert await list_ids(client, trigger_id=UNKNOWN_ID) == []
    assert await list_ids(client, status="success") == ids("e1")
    assert await list_ids(client, status="failure") == ids("e3")
    assert await list_ids(client, status="pending") == ids("e2")
    assert await list_ids(client, status="retrying") == ids("e5")
    assert await list_ids(client, status="success", view="archived") == ids("e4")
    assert await list_ids(client, source="api") == ids("e1")
    assert await list_ids(client, source="scheduled") == ids("e3")
    assert await list_ids(client, source="manual-test") == ids("e2", "e5")
    assert await list_ids(client, is_test_run="true") == ids("e2", "e5")
    assert await list_ids(client, is_test_run="false") == ids("e1", "e3")
    assert await list_ids(client, trigger_id=t1, status="pending", is_test_run="true") == ids("e2")
    assert await list_ids(client, trigger_id=t1, source="scheduled") == []


async def test_list_time_range_since_inclusive_until_exclusive(
    client: httpx.AsyncClient, db: Database
) -> None:
    _, _, ev = await filters_scenario(db)

    def at(name: str) -> str:
        return iso(ev[name].fired_at)

    assert await list_ids(client, since=at("e3")) == [ev["e1"].id, ev["e2"].id, ev["e3"].id]
    assert await list_ids(client, until=at("e2")) == [ev["e3"].id, ev["e5"].id]
    assert await list_ids(client, since=at("e3"), until=at("e1")) == [ev["e2"].id, ev["e3"].id]
    # Any offset is accepted and means the same instant.
    plus_two = ev["e3"].fired_at.astimezone(timezone(timedelta(hours=2)))
    assert await list_ids(client, since=plus_two.isoformat()) == [
        ev["e1"].id,
        ev["e2"].id,
        ev["e3"].id,
    ]
    # A range never widens a view: the active view stays within the active window, the
    # archived view within its own bounds, and nothing past the total window comes back.
    long_ago = iso(datetime.now(UTC) - 100 * H)
    assert await list_ids(client, since=long_ago) == [ev[n].id for n in ("e1", "e2", "e3", "e5")]
    assert await list_ids(client, view="archived", since=long_ago) == [ev["e4"].id]
    assert await list_ids(client, view="archived", until=iso(datetime.now(UTC))) == [ev["e4"].id]
    assert await list_ids(client, view="archived", since=iso(ev["e4"].fired_at + M)) == []
    assert await list_ids(client, until=iso(datetime.now(UTC) - 10 * H)) == []


INVALID = [
    ({"view": "deleted"}, "view"),
    ({"view": "ACTIVE"}, "view"),
    ({"status": "done"}, "status"),
    ({"source": "webhook"}, "source"),
    ({"is_test_run": "yes"}, "is_test_run"),
    ({"is_test_run": "1"}, "is_test_run"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "2.5"}, "limit"),
    ({"cursor": "not a cursor!"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|nope").decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"yesterday|" + UNKNOWN_ID.encode()).decode()}, "cursor"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2026-01-01T00:00:00"}, "since"),  # no offset
    ({"until": "soon"}, "until"),
]


@pytest.mark.parametrize(("params", "field"), INVALID, ids=[f"{f}={p[f]}" for p, f in INVALID])
async def test_invalid_list_parameters_are_400_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert_invalid(await client.get(EVENTS, params=params), field)


async def test_limit_bounds_are_accepted(client: httpx.AsyncClient, db: Database) -> None:
    ev = await views_scenario(db)
    assert await list_ids(client, limit="1") == [ev["a1"].id]
    assert len(await list_ids(client, limit="500")) == 3


# ---- list: cursor pages -------------------------------------------------------------------


async def _pages(
    client: httpx.AsyncClient, params: dict[str, Any], between: Any = None
) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(50):
        response = await client.get(EVENTS, params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [i["id"] for i in body["items"]]
        sizes.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, sizes
        if between is not None:
            await between()
    raise AssertionError("paging did not end")


async def test_cursor_pages_each_event_once_while_new_ones_arrive(
    client: httpx.AsyncClient, db: Database
) -> None:
    originals = [await add(db, (10 + i) * M, status="success") for i in range(7)]
    arrived: list[Ev] = []

    async def new_one_arrives() -> None:
        arrived.append(await add(db, timedelta(0)))

    seen, sizes = await _pages(client, {"limit": 3}, new_one_arrives)
    assert seen == [e.id for e in originals]  # newest first, each once, none of the new
    assert sizes == [3, 3, 1]
    assert len(arrived) == 2
    # A fresh listing starts at the newest, arrivals included.
    assert (await list_ids(client, limit=2)) == [arrived[1].id, arrived[0].id]


async def test_no_empty_last_page_and_pages_keep_their_filters(
    client: httpx.AsyncClient, db: Database
) -> None:
    t1 = new_id(datetime.now(UTC))
    mine = [await add(db, (10 + i) * M, trigger_id=t1) for i in range(6)]
    for i in range(4):
        await add(db, (11 + 2 * i) * M)  # interleaved events of no trigger
    seen, sizes = await _pages(client, {"limit": 3, "trigger_id": t1})
    assert seen == [e.id for e in mine]
    assert sizes == [3, 3]


async def test_archived_view_pages_across_both_tables(
    client: httpx.AsyncClient, db: Database
) -> None:
    archived = [
        await add(db, (3 + i) * H, status="success", in_archive=i % 2 == 0) for i in range(7)
    ]
    await add(db, 1 * M)  # active, never in the archived pages
    seen, sizes = await _pages(client, {"view": "archived", "limit": 2})
    assert seen == [e.id for e in archived]
    assert sizes == [2, 2, 2, 1]


# ---- one event ----------------------------------------------------------------------------


async def test_get_one_event_from_either_table_with_its_view(
    client: httpx.AsyncClient, db: Database
) -> None:
    ev = await views_scenario(db)
    for name, view in (
        ("a1", "active"),
        ("a3", "active"),
        ("hot_archived", "archived"),
        ("moved", "archived"),
        ("moved_older", "archived"),
    ):
        response = await client.get(f"{EVENTS}/{ev[name].id}")
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert set(body) == EVENT_KEYS | {"request"}
        assert body["id"] == ev[name].id
        assert body["retention"] == view, name
        assert body["status"] == ev[name].status
        assert parse_time(body["fired_at"]) == ev[name].fired_at
    # And it agrees with the lists.
    archived_ids = await list_ids(client, view="archived")
    assert archived_ids == [ev[n].id for n in ("hot_archived", "moved", "moved_older")]


async def test_get_one_event_has_every_field(client: httpx.AsyncClient, db: Database) -> None:
    trigger_id = new_id(datetime.now(UTC))
    e = await add(
        db,
        5 * M,
        trigger_id=trigger_id,
        trigger_type="interval_scheduled",
        source="manual-test",
        is_test_run=True,
        status="failure",
        payload={"order": 7, "items": ["a", "b"], "note": None},
    )
    body = (await client.get(f"{EVENTS}/{e.id}")).json()
    times = {k: body.pop(k) for k in ("scheduled_at", "fired_at", "created_at", "updated_at")}
    assert body == {
        "id": e.id,
        "trigger_id": trigger_id,
        "trigger_type": "interval_scheduled",
        "source": "manual-test",
        "is_test_run": True,
        "note": "test run",
        "replay_of": None,
        "payload": {"order": 7, "items": ["a", "b"], "note": None},
        "status": "failure",
        "attempts": 5,
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "delivered_at": None,
        "retention": "active",
        "request": {
            "method": "POST",
            "url": "https://example.com/hook",
            "body": '{"order":7,"items":["a","b"],"note":null}',
        },
    }
    assert parse_time(times["fired_at"]) == e.fired_at
    assert parse_time(times["scheduled_at"]) == e.fired_at - timedelta(milliseconds=250)
    assert parse_time(times["created_at"]) >= e.fired_at
    parse_time(times["updated_at"])


async def test_get_unknown_or_expired_event_is_404(client: httpx.AsyncClient, db: Database) -> None:
    ev = await views_scenario(db)
    assert_problem(await client.get(f"{EVENTS}/{UNKNOWN_ID}"), 404)
    for odd in ODD_IDS:
        assert_problem(await client.get(f"{EVENTS}/{odd}"), 404)
    # Past the total window: 404 although the retention role has not removed the rows yet.
    for name, table in (("gone_hot", "event_logs"), ("gone_archive", "event_logs_archive")):
        assert_problem(await client.get(f"{EVENTS}/{ev[name].id}"), 404)
        assert await in_table(db, table, ev[name].id)


# ---- aggregate ----------------------------------------------------------------------------


async def test_aggregate_per_trigger_over_the_whole_window(
    client: httpx.AsyncClient, db: Database
) -> None:
    hook, cron = new_id(datetime.now(UTC)), new_id(datetime.now(UTC))
    hook_events = [
        await add(db, 2 * M, trigger_id=hook, status="success"),
        await add(db, 3 * M, trigger_id=hook, status="pending"),
        await add(db, 4 * H, trigger_id=hook, status="failure", in_archive=True),
        await add(db, 5 * H, trigger_id=hook, status="retrying"),
        await add(db, 47 * H, trigger_id=hook, status="success", in_archive=True),
        await add(db, 49 * H, trigger_id=hook, status="success"),  # past the window
    ]
    cron_events = [
        await add(
            db,
            h * H,
            trigger_id=cron,
            trigger_type="cron_scheduled",
            source="scheduled",
            status=s,
            in_archive=h > 2,
        )
        for h, s in ((3, "success"), (6, "success"), (20, "failure"))
    ]
    await add(db, 1 * M, source="manual-test", is_test_run=True, status="success")  # no trigger
    await add(db, 60 * H, trigger_id=new_id(datetime.now(UTC)), in_archive=True)  # gone

    response = await client.get(EVENTS, params={"aggregate": "trigger"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    by_trigger = {item["trigger_id"]: item for item in body["items"]}
    assert set(by_trigger) == {hook, cron}
    for item in body["items"]:
        assert set(item) == {"trigger_id", "trigger_type", "counts", "last_fired_at"}
    assert by_trigger[hook]["trigger_type"] == "webhook"
    assert by_trigger[hook]["counts"] == {
        "success": 2,
        "failure": 1,
        "pending": 1,
        "retrying": 1,
        "total": 5,
    }
    assert parse_time(by_trigger[hook]["last_fired_at"]) == hook_events[0].fired_at
    assert by_trigger[cron]["trigger_type"] == "cron_scheduled"
    assert by_trigger[cron]["counts"] == {
        "success": 2,
        "failure": 1,
        "pending": 0,
        "retrying": 0,
        "total": 3,
    }
    assert parse_time(by_trigger[cron]["last_fired_at"]) == cron_events[0].fired_at


async def test_aggregate_of_nothing_is_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get(EVENTS, params={"aggregate": "trigger"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_aggregate_pages_by_trigger_newest_first_each_trigger_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    triggers = [new_id(datetime.now(UTC) - i * M) for i in range(5)]  # newest first
    for n, trigger_id in enumerate(triggers):
        for k in range(n + 1):
            await add(db, (k + 1) * M, trigger_id=trigger_id, status="success")
        await add(db, 3 * H, trigger_id=trigger_id, status="failure", in_archive=True)
    seen: list[tuple[str, int]] = []
    cursor = None
    pages = 0
    while True:
        params = {"aggregate": "trigger", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(EVENTS, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [(i["trigger_id"], i["counts"]["total"]) for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [(t, n + 2) for n, t in enumerate(triggers)]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "501"}, {"cursor": "bm9wZQ"}])
async def test_aggregate_bad_limit_or_cursor_is_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(EVENTS, params={"aggregate": "trigger"} | params)
    assert_invalid(response, next(iter(params)))


async def test_active_view_lists_an_active_event_already_in_the_archive(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A retention process whose clock runs ahead of ours moved it early: by our clock it
    is still active, so the active view lists it, as active (invariant 7, docs/design.md)."""
    early = await add(db, 10 * M, status="success", in_archive=True)
    hot = await add(db, 5 * M, status="success")
    response = await client.get(EVENTS)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["id"], i["retention"]) for i in items] == [(hot.id, "active"), (early.id, "active")]
    assert await list_ids(client, view="archived") == []


async def test_unknown_aggregate_is_400(client: httpx.AsyncClient) -> None:
    assert_invalid(await client.get(EVENTS, params={"aggregate": "other"}), "aggregate")


# ---- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [EVENTS, f"{EVENTS}?view=archived", f"{EVENTS}?aggregate=trigger", f"{EVENTS}/{UNKNOWN_ID}"],
)
async def test_event_endpoints_need_a_key(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient, path: str
) -> None:
    assert_problem(await anonymous.get(path), 401)
    assert_problem(await anonymous.get(path, headers={"Authorization": "Bearer wrong"}), 401)
    answered = await anonymous.get(path, headers={"X-API-Key": TEST_API_KEY})
    assert answered.status_code == (404 if path.endswith(UNKNOWN_ID) else 200)


async def test_event_by_id_needs_a_key_even_when_it_exists(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient, db: Database
) -> None:
    e = await add(db, 1 * M)
    assert_problem(await anonymous.get(f"{EVENTS}/{e.id}"), 401)


# ---- deleted triggers ---------------------------------------------------------------------


async def test_deleted_triggers_events_stay_listed_and_readable(
    client: httpx.AsyncClient, db: Database
) -> None:
    trigger = await create(client, trigger_body("webhook", name="to delete"))
    recent = await add(db, 1 * M, trigger_id=trigger["id"], status="success")
    old = await add(db, 5 * H, trigger_id=trigger["id"], status="failure", in_archive=True)

    deleted = await client.delete(f"{TRIGGERS}/{trigger['id']}")
    assert deleted.status_code == 204
    assert_problem(await client.get(f"{TRIGGERS}/{trigger['id']}"), 404)

    assert await list_ids(client, trigger_id=trigger["id"]) == [recent.id]
    assert await list_ids(client, trigger_id=trigger["id"], view="archived") == [old.id]
    for e, view in ((recent, "active"), (old, "archived")):
        response = await client.get(f"{EVENTS}/{e.id}")
        assert response.status_code == 200, response.text
        assert response.json()["trigger_id"] == trigger["id"]
        assert response.json()["retention"] == view
    aggregate = (await client.get(EVENTS, params={"aggregate": "trigger"})).json()["items"]
    assert [(i["trigger_id"], i["trigger_type"], i["counts"]["total"]) for i in aggregate] == [
        (trigger["id"], "webhook", 2)
    ]


@pytest.mark.parametrize("odd", ["6³$", "ü" * 30, "x" * 300, "01M8S0VEFR8MF5331MYVK9M46J'--"])
async def test_a_trigger_id_filter_no_trigger_can_have_is_an_empty_page_not_a_5xx(
    client: httpx.AsyncClient, db: Database, odd: str
) -> None:
    """Found by schemathesis: a non-ASCII id reached MariaDB as a collation error (1267),
    which was answered as 503 "database unavailable"."""
    response = await client.get(EVENTS, params={"trigger_id": odd})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
