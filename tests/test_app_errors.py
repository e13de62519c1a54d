import logging
import sqlite3

import asyncpg
import pytest
from starlette.routing import Route

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pages import app_client

pytestmark = pytest.mark.anyio


async def test_a_server_error_logs_the_handler_not_the_path(hub: Harness, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    hub.app.router.routes.insert(0, Route("/p/{token}/broken", broken))
    # Starlette answers 500, then re-raises for the server to log; this client takes the answer instead.
    async with app_client(hub.app, base_url=hub.client.base_url, raise_app_exceptions=False) as client:
        with caplog.at_level(logging.ERROR):
            response = await client.get("/p/SECRET-LINK-TOKEN/broken")
    assert response.status_code == 500
    assert "problem with the service" in response.text
    assert "unhandled RuntimeError in broken (GET)" in caplog.text
    assert "SECRET-LINK-TOKEN" not in caplog.text


async def test_a_database_out_of_reach_is_503_with_retry_after_not_500(make_hub: MakeHub) -> None:
    hub = await make_hub(sqlite_busy_timeout_ms=100)
    key = await hub.create_api_key()

    async def out_of_reach(request):  # type: ignore[no-untyped-def]
        # What the drivers raise when the connection is gone or the write lock is held past the busy timeout.
        if hub.db.dialect == "postgresql":
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        raise sqlite3.OperationalError("database is locked")

    for path in ("/appointments", "/api/v1/events"):
        hub.app.router.routes.insert(0, Route(path, out_of_reach))
    async with app_client(hub.app, base_url=hub.client.base_url, raise_app_exceptions=False) as client:
        page = await client.get("/appointments")
        api = await client.get("/api/v1/events", headers={"Authorization": f"Bearer {key}"})
    assert (page.status_code, page.headers["retry-after"]) == (503, "5")
    assert "the service is unavailable" in page.text
    assert (api.status_code, api.headers["retry-after"]) == (503, "5")
    assert api.json() == {"errors": [{"field": "", "message": "service unavailable; try again"}]}
