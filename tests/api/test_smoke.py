from __future__ import annotations

import httpx


async def test_create_and_get_roundtrip(client: httpx.AsyncClient) -> None:
    body = {
        "name": "n",
        "type": "webhook",
        "config": {"endpoint": "https://example.com/x", "schema": {"type": "object"}},
    }
    created = await client.post("/api/v1/triggers", json=body)
    assert created.status_code == 201, created.text
    got = await client.get(f"/api/v1/triggers/{created.json()['id']}")
    assert got.json() == created.json()
