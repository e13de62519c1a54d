"""A hub kept on one event loop outside pytest's async fixtures, for hypothesis tests: its examples (and a state
machine's steps) run through the loop one at a time, on one database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette

from hub.app import create_app
from hub.clock import FixedClock
from hub.db.migrate import migrate
from hub.settings import load_settings
from tests.databases import own_database_url
from tests.harness import Harness
from tests.pages import app_client

T = TypeVar("T")
SECRET = "fuzz-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


# One hub per test, on one event loop that the hypothesis examples share.
@dataclass
class Fuzz:
    runner: asyncio.Runner
    app: Starlette
    clock: FixedClock
    path: Path
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def browser(self) -> Harness:
        """A browser with cookies of its own, on the shared hub."""
        client = app_client(self.app)
        self._clients.append(client)
        hub = self.app.state.hub
        return Harness(app=self.app, client=client, db=hub.db, clock=self.clock, settings=hub.settings, path=self.path)

    @cached_property
    def h(self) -> Harness:
        return self.browser()


@contextlib.contextmanager
def running_hub(tmp_path: Path, backend: str, **overrides: Any) -> Iterator[Fuzz]:
    """Built the way tests/conftest.py builds one, but outside pytest's fixtures."""
    clock = FixedClock(NOW)
    url = own_database_url(backend, tmp_path)
    path = tmp_path / "hub.sqlite3"
    hub_settings = load_settings(
        environ={}, overrides={"database_url": url, "secret_key": SECRET, "allowed_hosts": ["testserver"], **overrides}
    )
    app = create_app(hub_settings, clock=clock, use_dev_outbox=True)
    lifespan = app.router.lifespan_context(app)
    with asyncio.Runner() as runner:
        runner.run(lifespan.__aenter__())
        fuzz = Fuzz(runner, app, clock, path)
        try:
            runner.run(migrate(app.state.hub.db, clock))
            yield fuzz
        finally:
            for client in fuzz._clients:
                runner.run(client.aclose())
            runner.run(lifespan.__aexit__(None, None, None))
