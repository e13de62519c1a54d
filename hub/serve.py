"""`python -m hub serve`: the web app on the fastest HTTP server stack installed, in one process or several.

Stacks, fastest first on the machine measured (README, Performance): Granian (a Rust HTTP server, uvloop), uvicorn
with uvloop and httptools, and uvicorn's pure-Python h11 on asyncio, kept as the fall-back where the others cannot
install. `auto` takes the first one installed.
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from hub.db.sqlite import has_wal_reset_bug
from hub.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

GRANIAN = "granian"
UVICORN_UVLOOP = "uvicorn-uvloop"
UVICORN = "uvicorn"
STACKS = (GRANIAN, UVICORN_UVLOOP, UVICORN)
# Granian's own lines on stderr, beside the hub's and where uvicorn writes its own.
_GRANIAN_LOGS: dict[str, Any] = {
    "handlers": {
        name: {"class": "logging.StreamHandler", "formatter": formatter, "stream": "ext://sys.stderr"}
        for name, formatter in (("console", "generic"), ("access", "access"))
    }
}
_NEEDS = {GRANIAN: ("granian", "uvloop"), UVICORN_UVLOOP: ("uvloop", "httptools"), UVICORN: ()}


def installed(stack: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in _NEEDS[stack])


def choose_stack(wanted: str) -> str:
    """The stack to serve on: the one asked for, or with "auto" the fastest installed."""
    if wanted == "auto":
        return next(stack for stack in STACKS if installed(stack))
    if wanted not in STACKS:
        raise SettingsError(f"http_server must be auto or one of {', '.join(STACKS)}, not {wanted!r}")
    if not installed(wanted):
        missing = ", ".join(m for m in _NEEDS[wanted] if importlib.util.find_spec(m) is None)
        raise SettingsError(f"http_server {wanted} needs {missing}, which is not installed")
    return wanted


def check_workers(settings: Settings, workers: int) -> None:
    """Several processes only where the database is safe with several writers."""
    if workers < 1:
        raise SettingsError("workers must be at least 1")
    if workers > 1 and settings.database_url.startswith("sqlite:") and has_wal_reset_bug(sqlite3.sqlite_version_info):
        raise SettingsError(
            f"workers {workers} refused: this Python links SQLite {sqlite3.sqlite_version}, which has the WAL-reset"
            " bug (fixed in 3.51.3, 3.50.7 and 3.44.6): several processes writing one database file at once can"
            " corrupt it. Serve with one worker, or use PostgreSQL (HUB_DATABASE_URL=postgresql://...)."
        )


def build_app(settings: Settings, run_worker: bool = False) -> Starlette:
    """Called in each server process (Granian's workers and uvicorn's alike build their own app)."""
    from hub.app import create_app

    return create_app(settings, run_worker=run_worker)


def app_from_environment() -> Starlette:
    """uvicorn's factory for several workers: each process reads the settings from the environment (and, started
    afresh, sets up the hub's log lines as `python -m hub` does)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return build_app(load_settings())


def serve_app(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    run_worker: bool = False,
) -> None:
    stack = choose_stack(settings.http_server)
    workers = workers or settings.workers
    check_workers(settings, workers)
    if run_worker and workers > 1:
        raise SettingsError("the demo's in-process worker runs with one web worker only")
    host, port = host or settings.host, port or settings.port
    log.info("Serving on %s:%s with %s, %d worker%s", host, port, stack, workers, "" if workers == 1 else "s")
    run_server(
        stack,
        partial(build_app, settings, run_worker),
        host=host,
        port=port,
        workers=workers,
        factory="hub.serve:app_from_environment",
    )


def run_server(
    stack: str,
    load: Callable[[], ASGIApp],
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: str = "",
) -> None:
    """Serves the app `load` builds (in each worker process). uvicorn's several workers need `factory`, the
    import name of a function that builds the app from the environment."""
    if stack == GRANIAN:
        from granian import Granian
        from granian.constants import Interfaces, Loops

        server = Granian(
            factory or "app",  # a name for Granian's logs; `load` builds the app
            address=host,
            port=port,
            interface=Interfaces.ASGI,  # with lifespan: each worker opens its own database pool
            workers=workers,
            loop=Loops.uvloop,
            log_access=False,  # paths carry the patient's link token
            log_dictconfig=_GRANIAN_LOGS,
        )
        server.serve(target_loader=load, wrap_loader=False)
        return
    import uvicorn

    fast = stack == UVICORN_UVLOOP
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop" if fast else "asyncio",
        "http": "httptools" if fast else "h11",
        # The hub reads X-Forwarded-For itself, from the proxies in HUB_TRUSTED_PROXIES only (hub/web/common.py).
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,  # paths carry the patient's link token
    }
    if workers == 1:
        uvicorn.run(load(), **options)
    else:
        uvicorn.run(factory, factory=True, workers=workers, **options)
