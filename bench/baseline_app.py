"""The framework's floor: python -m bench.baseline_app --db FILE [--port 8001]

A bare Starlette app on aiosqlite with one Jinja page that lists a patient's appointments: no sessions, no
middleware, no CSRF, no gzip. The journey benchmark serves it with one uvicorn worker against the hub's own
database file, on the same HTTP server stack, and compares the hub's /appointments page with it.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import aiosqlite
from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hub.serve import STACKS, choose_stack, run_server

_PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>Your appointments</title></head>
<body>
<h1>Your appointments</h1>
{% for a in appointments %}
<div class="card">
  <h3><a href="/appointments/{{ a.id }}">{{ a.starts_at }}</a></h3>
  <p>{{ a.clinic }} ({{ a.specialty }})<br>{{ a.mode }} at {{ a.site_name }}</p>
  <p>{{ a.status }} {{ a.request_state }}</p>
</div>
{% else %}<p>You have no appointments.</p>{% endfor %}
</body>
</html>
"""
# The same rows the hub's list reads (appointments_patient index), without the hub's extra columns.
_SQL = (
    "SELECT a.id, a.starts_at, a.clinic, a.specialty, a.mode, a.status, a.request_state, s.name AS site_name"
    " FROM appointments a JOIN sites s ON s.id = a.site_id WHERE a.patient_id = ? AND a.starts_at >= ?"
    " ORDER BY a.starts_at"
)


def create_app(path: str) -> Starlette:
    template = Environment(autoescape=True).from_string(_PAGE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = await aiosqlite.connect(path)
        db.row_factory = sqlite3.Row
        app.state.db = db
        try:
            yield
        finally:
            await db.close()

    async def appointments(request: Request) -> Response:
        async with request.app.state.db.execute(_SQL, (int(request.path_params["patient_id"]), "")) as cursor:
            rows = await cursor.fetchall()
        return HTMLResponse(template.render(appointments=rows))

    return Starlette(routes=[Route("/patients/{patient_id:int}/appointments", appointments)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app", description=__doc__)
    parser.add_argument("--db", required=True, help="an SQLite file with the hub's schema")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--stack", default="auto", choices=("auto", *STACKS), help="HTTP server, as the hub's")
    args = parser.parse_args(argv)
    run_server(choose_stack(args.stack), partial(create_app, args.db), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
