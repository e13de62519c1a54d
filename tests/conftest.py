from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.clock import FixedClock
from hub.db.migrate import migrate
from hub.settings import load_settings
from tests.databases import BACKENDS, database_url, drop_schemas
from tests.harness import Harness
from tests.pages import app_client

SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
MakeHub = Callable[..., Awaitable[Harness]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): a test of SQLite itself; it runs on SQLite alone")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a database runs once per backend, unless it is about SQLite itself."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        # Session scope: the run does every test on SQLite, then on PostgreSQL, so long-lived servers (the
        # browser tests' demo) start once per backend.
        metafunc.parametrize("backend", BACKENDS[:1] if only else BACKENDS, scope="session")


@pytest.fixture(scope="session", autouse=True)
def _postgres_schemas() -> Iterator[None]:
    yield
    drop_schemas()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))


@pytest.fixture
async def make_hub(tmp_path: Any, clock: FixedClock, backend: str) -> AsyncIterator[MakeHub]:
    """make_hub(**settings) -> Harness on a fresh database of the test's backend; each is shut down after the test."""
    stack: list[Any] = []
    made = 0

    async def make(*, client_address: str = "203.0.113.7", **overrides: Any) -> Harness:
        nonlocal made
        url = await database_url(backend, tmp_path, made)
        path = tmp_path / f"hub{made}.sqlite3"
        made += 1
        settings = load_settings(
            environ={},
            # The test client's host name is "testserver": accepted as a health check's would be.
            overrides={"database_url": url, "secret_key": SECRET, "allowed_hosts": ["testserver"], **overrides},
        )
        app = create_app(settings, clock=clock, use_dev_outbox=True)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        db = app.state.hub.db
        await migrate(db, clock)
        client = app_client(
            app, base_url=settings.base_url.replace("127.0.0.1:8000", "testserver"), address=client_address
        )
        stack.append(client)
        return Harness(app=app, client=client, db=db, clock=clock, settings=settings, path=path)

    yield make
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
async def new_browser() -> AsyncIterator[Callable[..., Harness]]:
    """new_browser(hub, address) -> the same hub seen from another browser (its own cookies and client address)."""
    opened: list[httpx.AsyncClient] = []

    def make(of: Harness, address: str = "198.51.100.20") -> Harness:
        client = app_client(of.app, base_url=of.client.base_url, address=address)
        opened.append(client)
        return dataclasses.replace(of, client=client)

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    return await make_hub()
