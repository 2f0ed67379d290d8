"""Access-log paths: a webhook URL's token never reaches a log line, whatever the shape of
the path it arrives in (the route, a retired URL, a path no route matches)."""

from __future__ import annotations

import pytest

from eventtrigger.roles.api.middleware import loggable_path

TOKEN = "u1PccFh3jo0AlozIXGXxVGbXj70r1dp6"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/webhook/{TOKEN}",
        f"/api/v1/webhook/{TOKEN}/",
        f"/api/v1/webhook/{TOKEN}/extra",
        f"/api/v1/webhook//{TOKEN}",
        f"//api//v1//webhook/{TOKEN}",
        f"/API/V1/WEBHOOK/{TOKEN}",
        f"/api/v1/webhook/{TOKEN}\nforged log line",
    ],
)
def test_everything_after_the_webhook_prefix_is_masked(path: str) -> None:
    assert loggable_path(path) == "/api/v1/webhook/{token}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/triggers/01M8S41YFT0TJJXYBMCTKK9TK0",
        "/api/v1/events",
        "/health",
        "/api/v1/webhooks",
    ],
)
def test_other_paths_are_logged_as_they_are(path: str) -> None:
    assert loggable_path(path) == path
