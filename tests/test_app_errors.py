import logging

import pytest
from starlette.routing import Route

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
