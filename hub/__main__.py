"""python -m hub serve | migrate | demo | worker | hl7 | ..."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from dataclasses import replace

from hub.clock import Clock
from hub.db import open_database
from hub.db.migrate import MigrationMismatch, migrate
from hub.serve import LOG_FORMAT
from hub.settings import Settings, SettingsError, check_templates, load_settings
from hub.vocabulary import StaffRole


def _port_taken(host: str, port: int) -> bool:
    """Checked before the banner, the migrations or a worker pass: a busy port is the first thing said."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _demo_settings(settings: Settings, port: int) -> Settings:
    """The demo's links follow its port (unless HUB_BASE_URL says otherwise), and its messages go at once: quiet
    hours would hold invitations and changes back overnight, and the dev outbox would show only codes."""
    default_base_url = Settings.__dataclass_fields__["base_url"].default
    base_url = f"http://127.0.0.1:{port}" if settings.base_url == default_base_url else settings.base_url
    quiet = {"HUB_NOTIFY__QUIET_START_HOUR", "HUB_NOTIFY__QUIET_END_HOUR"} & set(os.environ)
    notify = settings.notify if quiet else replace(settings.notify, quiet_start_hour=0, quiet_end_hour=0)
    return replace(settings, port=port, base_url=base_url, notify=notify)


async def _migrate(settings: Settings) -> list[int]:
    db = await open_database(settings)
    try:
        return await migrate(db)
    finally:
        await db.close()


async def _seed(settings: Settings) -> str:
    from hub.jobs.demo import demo_instructions, seed_demo

    db = await open_database(settings)
    try:
        await migrate(db)
        await seed_demo(db, now=Clock().now())
        rows = await db.fetch_all("SELECT link_id, mrn FROM patients WHERE mrn LIKE 'RF1%'")
        return demo_instructions(settings, {r["mrn"]: r["link_id"] for r in rows})
    finally:
        await db.close()


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub.jobs.importer import import_file
    from hub.store.api_keys import create_api_key, revoke_api_key

    db = await open_database(settings)
    now = Clock().now()
    try:
        if args.command == "create-organisation":
            async with db.write() as tx:
                await tx.execute(
                    "INSERT INTO organisations (code, name, phone) VALUES (?, ?, ?)", (args.code, args.name, args.phone)
                )
            print(f"Created organisation {args.code}")
        elif args.command == "create-api-key":
            key = await create_api_key(db, organisation_code=args.org, name=args.name, now=now)
            print(f"API key for {args.org} ({args.name}). It is shown only now; store it in your secrets manager:")
            print(key)
        elif args.command == "create-staff":
            from hub.store.staff import create_staff

            organisations = args.organisation or []
            if not organisations and not args.hub_wide:
                # On a hub of one trust the account is that trust's (the demo's `make staff`); otherwise say which.
                codes = [r["code"] for r in await db.fetch_all("SELECT code FROM organisations ORDER BY code")]
                if len(codes) != 1:
                    print(
                        "Give the trusts this person works for: --organisation CODE (repeat it for several), or"
                        f" --hub-wide for every trust. This hub has: {', '.join(codes) or 'no organisations yet'}.",
                        file=sys.stderr,
                    )
                    return 2
                organisations = codes
            try:
                token = await create_staff(
                    db,
                    username=args.username,
                    role=args.role,
                    secret=settings.secret_key,
                    now=now,
                    hours=settings.staff.setup_hours,
                    organisations=organisations,
                    hub_wide=args.hub_wide,
                )
            except ValueError as exc:
                print(f"Not created: {exc}.", file=sys.stderr)
                return 2
            trusts = "every trust (hub-wide)" if args.hub_wide else ", ".join(organisations)
            print(
                f"Created {args.role} {args.username.lower()} for {trusts}. Send them this one-time set-up link (it"
                f" works for {settings.staff.setup_hours} hours):"
            )
            print(f"{settings.base_url}/staff/setup/{token}")
        elif args.command == "record-service-resend":
            from hub.jobs.record_service import queue_numbers
            from hub.store.record_service import request_resend

            again = await request_resend(db, actor="record-service-resend", now=now)
            added = await queue_numbers(db, Clock(), everything=True)
            print(f"{again + added} NHS numbers queued for the Record Service; the worker sends them.")
        elif args.command == "rotate-link":
            from hub.store.links import patient_by_ref, send_new_link
            from hub.vocabulary import ActorType

            patient_id = await patient_by_ref(db, organisation_code=args.org, ref=args.patient_ref)
            sent = None
            if patient_id is not None:
                sent = await send_new_link(
                    db,
                    patient_id=patient_id,
                    actor_type=ActorType.SYSTEM,
                    actor_id="rotate-link",
                    settings=settings,
                    now=now,
                )
            if sent is None:
                print(f"No patient {args.patient_ref} in {args.org}", file=sys.stderr)
                return 1
            how = {"sms": "by text message", "email": "by email"}.get(sent.channel or "")
            print(
                f"Sent {args.org} patient {args.patient_ref} a new link {how}; their old links no longer work."
                if how
                else f"{args.org} patient {args.patient_ref} has a new link; their old links no longer work. We have no"
                " mobile or email we may use, so it was not sent: the hub's next message to them carries it."
            )
        elif args.command == "revoke-api-key":
            if not await revoke_api_key(db, organisation_code=args.org, name=args.name, now=now):
                print(f"No live key named {args.name} for {args.org}", file=sys.stderr)
                return 1
            print(f"Revoked {args.name}")
        else:
            report = await import_file(
                db, Path(args.file), organisation_code=args.org, settings=settings, clock=Clock()
            )
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.outcomes.items())) or "nothing applied"
            print(f"{report.rows} rows: {counts}, {len(report.rejected)} rejected")
            for line, reason in report.rejected:
                print(f"  line {line}: {reason}")
            return 1 if report.rejected else 0
    except (LookupError, ValueError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    return 0


def _copy_db(source: str, target: str) -> int:
    """Needs no settings: both databases are named on the command line."""
    from hub.jobs.copy_db import CopyError, copy_db

    try:
        return 0 if asyncio.run(copy_db(source, target)) else 1
    except CopyError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Hospital appointment hub")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the web app")
    demo = commands.add_parser("demo", help="migrate, seed demo data and serve with the dev outbox")
    for p in (serve, demo):
        p.add_argument("--host")
        p.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="web processes (HUB_WORKERS); above 1 needs PostgreSQL")
    commands.add_parser("migrate", help="apply database migrations")
    org = commands.add_parser("create-organisation", help="add a trust (an organisation) to the hub")
    org.add_argument("--code", required=True, help="ODS code, e.g. RAL")
    org.add_argument("--name", required=True)
    org.add_argument("--phone", default="", help="booking team's phone number shown to patients")
    for name, text in (
        ("create-api-key", "create an integration API key (printed once)"),
        ("revoke-api-key", "revoke an integration API key"),
    ):
        key = commands.add_parser(name, help=text)
        key.add_argument("--org", required=True, help="the organisation's code")
        key.add_argument("--name", required=True, help="a name for the key, e.g. pas-live")
    staff = commands.add_parser("create-staff", help="add a booking-centre agent or admin (prints a set-up link)")
    staff.add_argument("--username", required=True)
    staff.add_argument("--role", required=True, choices=list(StaffRole))
    staff.add_argument(
        "--organisation",
        action="append",
        metavar="CODE",
        help="a trust this person works for (repeat for several; optional on a hub of one trust)",
    )
    staff.add_argument("--hub-wide", action="store_true", help="sees every trust (for admins of the whole hub)")
    rotate = commands.add_parser(
        "rotate-link", help="send a patient a new link; their old links stop working (a link in the wrong hands)"
    )
    rotate.add_argument("--org", required=True, help="the organisation's code")
    rotate.add_argument("--patient-ref", required=True, help="the patient's reference (MRN) in that organisation")
    importer = commands.add_parser("import", help="import a CSV extract of appointments")
    importer.add_argument("file", help="CSV file; columns in the README")
    importer.add_argument("--org", required=True, help="the organisation's code")
    hl7 = commands.add_parser("hl7", help="run the HL7 v2 MLLP listener (ADT, SIU, MDM in; ACKs out)")
    hl7.add_argument("--host")
    hl7.add_argument("--port", type=int)
    worker = commands.add_parser("worker", help="run background jobs (housekeeping)")
    worker.add_argument("--once", action="store_true", help="run each job once and stop")
    commands.add_parser("record-service-resend", help="send every NHS number to the NHS App's Record Service again")
    copy = commands.add_parser("copy-db", help="copy a hub to another database (e.g. SQLite to PostgreSQL)")
    copy.add_argument("--from", dest="source", required=True, help="the hub's database URL; only read")
    copy.add_argument("--to", dest="target", required=True, help="an empty database URL; migrated, then filled")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if args.command == "copy-db":
        return _copy_db(args.source, args.target)
    try:
        settings = load_settings(overrides={"demo": True} if args.command == "demo" else None)
        if args.command in ("serve", "worker") and settings.notify.api_key:
            check_templates(settings)
    except SettingsError as exc:
        print(f"Settings error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        try:
            applied = asyncio.run(_migrate(settings))
        except MigrationMismatch as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        print(f"Applied migrations: {applied}" if applied else "Database is up to date")
        return 0
    if args.command in (
        "create-organisation",
        "create-api-key",
        "revoke-api-key",
        "create-staff",
        "rotate-link",
        "import",
        "record-service-resend",
    ):
        return asyncio.run(_admin(settings, args))
    if args.command == "hl7":
        from hub.jobs.hl7_listener import run_listener

        try:
            asyncio.run(run_listener(settings, host=args.host, port=args.port))
        except SettingsError as exc:
            print(f"Settings error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "worker":
        from hub.jobs.worker import run_worker

        asyncio.run(run_worker(settings, once=args.once))
        return 0
    from hub.serve import check_workers, choose_stack, serve_app

    demo = args.command == "demo"
    workers = 1 if demo else (args.workers or settings.workers)
    try:
        check_workers(settings, workers)
        choose_stack(settings.http_server)
    except SettingsError as exc:
        print(f"Settings error: {exc}", file=sys.stderr)
        return 2
    port = args.port or settings.port
    if _port_taken(args.host or settings.host, port):
        print(f"Port {port} is already in use. Choose another: make run PORT=8611, or --port 8611.", file=sys.stderr)
        return 2
    if demo:
        settings = _demo_settings(settings, port)
        print(asyncio.run(_seed(settings)), flush=True)
    serve_app(settings, host=args.host, port=port, workers=workers, run_worker=demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
