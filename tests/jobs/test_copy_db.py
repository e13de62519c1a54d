"""python -m hub copy-db: a hub moved whole to another database, verified, never merged into live data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.clock import FixedClock, to_db
from hub.db import Database, connect
from hub.db.migrate import migrate, migration_files
from hub.jobs.copy_db import CopyError, checksum, copy_db, copy_order, hub_schema, summarise, verify
from hub.jobs.demo import PATIENTS, seed_demo
from hub.settings import ROOT
from tests import factories
from tests.conftest import SECRET
from tests.databases import postgres_url

pytestmark = pytest.mark.anyio

AUDIT_ROWS = 1201  # more than two batches of 500


def run_copy(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", "copy-db", "--from", source, "--to", target],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HUB_SECRET_KEY": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def add_rows(db: Database, clock: FixedClock) -> None:
    """Rows the demo leaves out: text and two-column keys, staff, call-backs, and enough audit rows to batch."""
    now = clock.now()
    patient = await db.fetch_one("SELECT id FROM patients ORDER BY id LIMIT 1")
    appointment = await db.fetch_one("SELECT id FROM appointments ORDER BY id LIMIT 1")
    assert patient and appointment
    async with db.write() as tx:
        staff = await factories.create_staff_user(tx, now=now, username="agent1")
        await factories.create_task(
            tx, patient_id=patient["id"], appointment_id=appointment["id"], status="claimed", claimed_by=staff, now=now
        )
        # Keys whose order differs between byte order and a language's collation.
        for challenge in ("b-challenge", "B_challenge", "_challenge", "a-challenge"):
            await factories.create_code_challenge(
                tx, id=challenge, link_patient_id=patient["id"], issued_at=now, candidates=[patient["id"]]
            )
        await factories.create_session(tx, id="Zs", patient_id=patient["id"], created_at=now)
        await tx.execute("UPDATE job_runs SET last_run_at = ? WHERE name = 'retention'", (to_db(now),))
        for n in range(AUDIT_ROWS):
            await factories.create_audit_event(tx, at=now, record_id=str(n))


@pytest.fixture
async def source_url(tmp_path: Path, clock: FixedClock) -> str:
    """A SQLite hub with the demo data, as `python -m hub demo` seeds it, and a few more rows."""
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    db = await connect(url)
    try:
        await migrate(db, clock)
        await seed_demo(db, now=clock.now())
        await add_rows(db, clock)
    finally:
        await db.close()
    return url


async def target_url(kind: str, tmp_path: Path, n: int = 5) -> str:
    if kind == "postgresql":
        return await postgres_url(n, bare=True)
    return f"sqlite:///{tmp_path}/target{n}.sqlite3"


async def hub_tables(db: Database) -> list[str]:
    rows = await db.fetch_all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'schema_migrations' ORDER BY name"
    )
    return [r["name"] for r in rows]


async def snapshot(url: str) -> dict[str, object]:
    tables, _ = await hub_schema()
    db = await connect(url)
    try:
        return {t.name: await summarise(db, t) for t in tables}
    finally:
        await db.close()


async def test_copies_a_sqlite_hub_to_postgresql(source_url: str) -> None:
    target_url = await postgres_url(5, bare=True)

    done = run_copy(source_url, target_url)

    assert done.returncode == 0, done.stderr
    source = await connect(source_url)
    target = await connect(target_url)
    try:
        tables = await hub_tables(source)
        lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:-1]}
        assert sorted(lines) == tables
        for table in tables:
            count = await source.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
            assert count == await target.fetch_one(f"SELECT COUNT(*) AS n FROM {table}"), table
            assert count and lines[table] == [str(count["n"]), "ok"]
        assert lines["audit_events"] == [str(AUDIT_ROWS), "ok"]
        assert done.stdout.splitlines()[-1].startswith(f"Verified: {len(tables)} tables, ")
        assert not done.stderr

        for sql in (
            "SELECT * FROM appointments ORDER BY id DESC LIMIT 1",
            "SELECT * FROM sites WHERE code = 'RFH'",
            "SELECT * FROM tasks",
            "SELECT * FROM job_runs",
        ):
            assert await target.fetch_one(sql) == await source.fetch_one(sql)
        letters = await source.fetch_all("SELECT id, content FROM letters ORDER BY id")
        assert letters and letters[0]["content"].startswith(b"%PDF")
        assert await target.fetch_all("SELECT id, content FROM letters ORDER BY id") == letters

        # The id counters were moved past the copied ids: a new row does not collide with a copied one.
        async with target.write() as tx:
            new = await tx.fetch_one("INSERT INTO organisations (code, name) VALUES ('RGT', 'New trust') RETURNING id")
            staff = await tx.fetch_one(
                "INSERT INTO staff_users (username, role, created_at) VALUES ('agent2', 'agent', 'x') RETURNING id"
            )
        highest = await source.fetch_one("SELECT MAX(id) AS id FROM organisations")
        assert new and highest and new["id"] == highest["id"] + 1
        assert staff and staff["id"] == 2
    finally:
        await source.close()
        await target.close()
    # Only table names and counts are printed, never what the rows hold.
    for _, given, family, _, mobile, email, uvc, _ in PATIENTS:
        for value in (given, family, mobile, email, uvc):
            assert not value or value not in done.stdout


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_refuses_a_target_that_holds_data(kind: str, source_url: str, tmp_path: Path) -> None:
    url = await target_url(kind, tmp_path, 6)
    target = await connect(url)
    try:
        await migrate(target)
        async with target.write() as tx:
            await factories.create_organisation(tx, code="RGT", name="Live trust")
    finally:
        await target.close()
    before = await snapshot(url)

    done = run_copy(source_url, url)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: the target already holds data in organisations (1 row); copy only into an empty database"
    ]
    assert await snapshot(url) == before


async def test_refuses_a_source_whose_migrations_differ(source_url: str, tmp_path: Path) -> None:
    last_version, last = migration_files()[-1]
    target = f"sqlite:///{tmp_path}/target.sqlite3"
    db = await connect(source_url)
    try:
        async with db.write() as tx:
            await tx.execute("DELETE FROM schema_migrations WHERE version = ?", (last_version,))
    finally:
        await db.close()
    source_before = Path(source_url.removeprefix("sqlite:///")).read_bytes()

    done = run_copy(source_url, target)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"Error: the source lacks migrations {last.name}: run `python -m hub migrate` against it first"
    ]
    assert not Path(tmp_path / "target.sqlite3").exists()
    assert Path(source_url.removeprefix("sqlite:///")).read_bytes() == source_before

    db = await connect(source_url)
    try:
        async with db.write() as tx:
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ''), (9999, 'x.sql', '')",
                (last_version, last.name),
            )
    finally:
        await db.close()
    done = run_copy(source_url, target)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["Error: the source has migrations this code does not know (x.sql)"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_verify_finds_a_changed_row(kind: str, source_url: str, tmp_path: Path) -> None:
    url = await target_url(kind, tmp_path)
    printed: list[str] = []
    assert await copy_db(source_url, url, echo=printed.append)
    assert printed[-1].startswith("Verified: ")
    source = await connect(source_url)
    target = await connect(url)
    try:
        async with target.write() as tx:
            await tx.execute("UPDATE patients SET given_name = 'Changed' WHERE id = (SELECT MIN(id) FROM patients)")
            await tx.execute("UPDATE letters SET content = ? WHERE id = (SELECT MIN(id) FROM letters)", (b"%PDF-x",))
            await tx.execute("DELETE FROM audit_events WHERE id = (SELECT MAX(id) FROM audit_events)")

        checks = {check.table: check for check in await verify(source, target)}
    finally:
        await source.close()
        await target.close()

    assert sorted(name for name, check in checks.items() if not check.same) == ["audit_events", "letters", "patients"]
    assert checks["patients"].source.rows == checks["patients"].target.rows
    assert checks["audit_events"].target.rows == AUDIT_ROWS - 1


async def test_round_trip_back_to_sqlite(source_url: str, tmp_path: Path) -> None:
    middle = await postgres_url(5, bare=True)
    assert await copy_db(source_url, middle, echo=lambda line: None)
    final = f"sqlite:///{tmp_path}/back.sqlite3"

    done = run_copy(middle, final)

    assert done.returncode == 0, done.stderr
    assert await snapshot(final) == await snapshot(source_url)


async def test_a_failed_copy_leaves_the_target_empty(source_url: str) -> None:
    url = await postgres_url(5, bare=True)
    db = await connect(source_url)
    try:  # SQLite keeps text in an INTEGER column; PostgreSQL refuses it half-way through the copy.
        async with db.write() as tx:
            await tx.execute(
                "UPDATE appointments SET sequence = 'Margaret' WHERE id = (SELECT MAX(id) FROM appointments)"
            )
    finally:
        await db.close()

    done = run_copy(source_url, url)

    assert done.returncode == 2
    assert done.stderr.splitlines() == ["Error: copying appointments failed (DataError); the target was left unchanged"]
    target = await connect(url)
    try:
        for table in ("organisations", "patients", "sites", "appointments", "audit_events"):
            assert await target.fetch_one(f"SELECT COUNT(*) AS n FROM {table}") == {"n": 0}
    finally:
        await target.close()


async def test_operational_errors_are_one_line(source_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    for source, target, message in (
        (f"sqlite:///{missing}", f"sqlite:///{tmp_path}/t.sqlite3", f"Error: the source database file {missing} does"),
        (source_url, "postgresql://postgres@127.0.0.1:1/test", "Error: cannot open the target database: "),
        (source_url, "mysql://localhost/hub", "Error: cannot open the target database: database URL must"),
        (source_url, source_url, "Error: --from and --to name the same database"),
    ):
        done = run_copy(source, target)
        assert done.returncode == 2, source
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(message), done.stderr
    assert not missing.exists()


def test_checksum_tells_values_apart() -> None:
    row = [1, "a", None, 1.5, b"\x00\xff"]
    assert checksum([row]) == checksum([[True, "a", None, 1.5, memoryview(b"\x00\xff")]])
    for changed in ([1, "a", "", 1.5, b"\x00\xff"], ["1", "a", None, 1.5, b"\x00\xff"], [1, "a", None, 1.25, b""]):
        assert checksum([changed]) != checksum([row])
    assert checksum([[1], [2]]) != checksum([[2], [1]])
    assert checksum([["ab", "c"]]) != checksum([["a", "bc"]])


async def test_tables_are_copied_parents_first() -> None:
    tables, fresh = await hub_schema()
    order = [t.name for t in tables]
    for table in tables:
        assert all(order.index(parent) < order.index(table.name) for parent in table.parents), table.name
    assert order.index("staff_users") < order.index("tasks")  # migration 0005 rebuilt the table (as callback_tasks)
    assert {name for name, summary in fresh.items() if summary.rows} == {"job_runs"}
    with pytest.raises(CopyError, match="cycle"):
        copy_order({"a": frozenset({"b"}), "b": frozenset({"a"}), "c": frozenset()})
