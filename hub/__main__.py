"""python -m hub serve | migrate | demo"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hub.clock import Clock
from hub.db import connect
from hub.db.migrate import migrate
from hub.settings import Settings, SettingsError, load_settings


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    import uvicorn

    from hub.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=settings.trust_proxy_headers,
        server_header=False,
        # uvicorn's access log prints full paths, which carry the patient's link token.
        access_log=False,
    )


async def _migrate(settings: Settings) -> list[int]:
    db = await connect(settings.database_url)
    try:
        return await migrate(db)
    finally:
        await db.close()


async def _seed(settings: Settings) -> str:
    from hub.demo import demo_instructions, seed_demo

    db = await connect(settings.database_url)
    try:
        await migrate(db)
        await seed_demo(db, now=Clock().now())
        rows = await db.fetch_all("SELECT id, mrn FROM patients WHERE mrn LIKE 'RF1%'")
        return demo_instructions(settings, {r["mrn"]: r["id"] for r in rows})
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Hospital appointment hub")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the web app")
    demo = commands.add_parser("demo", help="migrate, seed demo data and serve with the dev outbox")
    for p in (serve, demo):
        p.add_argument("--host")
        p.add_argument("--port", type=int)
    commands.add_parser("migrate", help="apply database migrations")
    worker = commands.add_parser("worker", help="run background jobs (housekeeping)")
    worker.add_argument("--once", action="store_true", help="run each job once and stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(overrides={"demo": True} if args.command == "demo" else None)
    except SettingsError as exc:
        print(f"Settings error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"Applied migrations: {applied}" if applied else "Database is up to date")
        return 0
    if args.command == "worker":
        from hub.worker import run_worker

        asyncio.run(run_worker(settings, once=args.once))
        return 0
    if args.command == "demo":
        print(asyncio.run(_seed(settings)), flush=True)
    _serve(settings, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
