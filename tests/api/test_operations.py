"""Operations endpoints: /health, /health/live, /metrics, /openapi.json, /docs."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.domain.schemas import CONFIG_SCHEMAS, TRIGGER_CREATE, TRIGGER_PATCH
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.api.app import routes
from eventtrigger.roles.api.openapi import openapi_document
from eventtrigger.store.db import Database
from tests.api._support import TRIGGERS, create, trigger_body
from tests.process import EventtriggerProcess

# Every route the api role serves today, as (path in the document, method).
IMPLEMENTED = {
    ("/api/v1/triggers", "post"),
    ("/api/v1/triggers", "get"),
    ("/api/v1/triggers/{trigger_id}", "get"),
    ("/api/v1/triggers/{trigger_id}", "patch"),
    ("/api/v1/triggers/{trigger_id}", "delete"),
    ("/health", "get"),
    ("/health/live", "get"),
    ("/metrics", "get"),
}
H = timedelta(hours=1)
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/")
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part]
    return _resolve(document, target)


# ---- health ---------------------------------------------------------------------------


async def test_health_live_is_200_ok(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


async def test_health_is_200_with_roles_and_dependency_checks(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/health")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "roles", "checks", "secrets"}
    assert body["status"] == "ok"
    assert body["secrets"] == "plaintext"  # the test server sets no EVENTTRIGGER_SECRET_KEY

    assert set(body["roles"]) == {"api"}
    api = body["roles"]["api"]
    assert {"status", "last_beat_seconds_ago"} <= set(api)
    assert api["status"] == "ok"
    assert isinstance(api["last_beat_seconds_ago"], int | float)
    assert 0 <= api["last_beat_seconds_ago"] < 30

    assert set(body["checks"]) == {"database", "kafka"}
    for name, check in body["checks"].items():
        assert {"status", "latency_ms"} <= set(check), name
        assert check["status"] == "ok", (name, check)
        assert isinstance(check["latency_ms"], int | float) and check["latency_ms"] >= 0


# ---- metrics --------------------------------------------------------------------------


async def test_metrics_is_prometheus_text_with_the_contract_families(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "eventtrigger_jobs_pending" in families
    # Prometheus strips a counter's `_total` suffix from the family name.
    for name in (
        "eventtrigger_jobs_processed",
        "eventtrigger_delivery_attempts",
        "eventtrigger_events",
        "eventtrigger_triggers",
        "eventtrigger_fire_lateness_seconds",
        "eventtrigger_delivery_latency_seconds",
    ):
        assert name in families, name
    assert any(line.startswith("eventtrigger_jobs_pending ") for line in text.splitlines())


# ---- OpenAPI and docs -----------------------------------------------------------------


async def test_openapi_json_is_a_valid_openapi_3_1_document(
    anonymous: httpx.AsyncClient, server: EventtriggerProcess
) -> None:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert document["servers"] == [{"url": server.base_url}]


async def test_openapi_trigger_create_schema_is_what_the_api_validates_with(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name, source in (("TriggerCreate", TRIGGER_CREATE), ("TriggerPatch", TRIGGER_PATCH)):
        documented = schemas[name]
        assert {k: v for k, v in documented.items() if k != "properties"} == {
            k: v for k, v in source.items() if k != "properties"
        }, name
        assert set(documented["properties"]) == set(source["properties"]), name
        for prop, schema in source["properties"].items():
            if prop != "config":
                assert documented["properties"][prop] == schema, (name, prop)
        # `config` is the one of the per-type configs, each exactly the validated schema.
        choices = [_resolve(document, c) for c in documented["properties"]["config"]["oneOf"]]
        assert sorted(map(repr, choices)) == sorted(map(repr, CONFIG_SCHEMAS.values())), name

    request = document["paths"]["/api/v1/triggers"]["post"]["requestBody"]
    schema = request["content"]["application/json"]["schema"]
    assert _resolve(document, schema) == schemas["TriggerCreate"]


async def test_openapi_lists_every_implemented_api_and_operations_route(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    assert _operations(document) >= IMPLEMENTED


def test_openapi_lists_exactly_the_routes_the_router_serves(settings: Settings) -> None:
    """Every (path, method) of the api process's router is documented, and nothing else."""
    res = Resources(
        settings=settings,
        clock=SystemClock(),
        db=Database(settings.database),
        health=Health((), {}),
        metrics=Metrics(),
        stats=StatsKeeper(Database(settings.database), Windows(H, 2 * H), Metrics()),
    )
    served = {
        (route.path, method.lower())
        for route in routes(res, api=True)
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert _operations(openapi_document("http://x")) == served


async def test_openapi_lists_the_openapi_and_docs_routes_too(anonymous: httpx.AsyncClient) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    assert {("/openapi.json", "get"), ("/docs", "get")} <= _operations(document)


async def test_openapi_documents_the_error_statuses_each_route_answers(
    anonymous: httpx.AsyncClient,
) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    expected = {
        ("/api/v1/triggers", "post"): {"201", "400", "401", "413", "415"},
        ("/api/v1/triggers", "get"): {"200", "400", "401"},
        ("/api/v1/triggers/{trigger_id}", "get"): {"200", "401", "404"},
        ("/api/v1/triggers/{trigger_id}", "patch"): {"200", "400", "401", "404", "413", "415"},
        ("/api/v1/triggers/{trigger_id}", "delete"): {"204", "401", "404"},
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (path, method)


async def test_openapi_example_of_a_real_trigger_has_every_required_property(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    trigger_schema = document["components"]["schemas"]["Trigger"]
    for kind in ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled"):
        created = await create(client, trigger_body(kind))
        assert set(trigger_schema["required"]) <= set(created), kind
        assert set(created) <= set(trigger_schema["properties"]), kind
    page = (await client.get(TRIGGERS)).json()
    assert set(page) == set(document["components"]["schemas"]["TriggerPage"]["required"])


async def test_docs_works_offline_from_assets_we_serve(anonymous: httpx.AsyncClient) -> None:
    """Swagger UI's page names only same-origin assets, each of which we serve: no CDN."""
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert assets, "the page loads no assets"
    assert all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        served = await anonymous.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 0, asset
    start = (await anonymous.get("/docs/assets/start.js")).text
    assert "/openapi.json" in start and "SwaggerUIBundle" in start


async def test_an_idle_keep_alive_connection_still_answers_after_clients_pool_it(
    server: EventtriggerProcess,
) -> None:
    """Clients keep idle connections for reuse (aiohttp 15 s, load balancers 60 s): the
    server must not close one first, or a request sent on it as it closes gets a reset.
    Idle past uvicorn's own default (5 s), the connection still carries a request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
    try:
        for n in range(2):
            if n:
                await asyncio.sleep(6)  # the idleness under test, not a wait for something
            writer.write(request)
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
    finally:
        writer.close()
