"""CSV import speed: python -m bench.import_bench [--rows 10000] [--output FILE]

Builds a hub on a fresh SQLite file, writes an extract of distinct patients and appointments, imports it, then
imports the same file again (the unchanged path every night after the first). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import SECRET, emit, machine
from hub.clock import Clock
from hub.db import connect
from hub.db.migrate import migrate
from hub.jobs.importer import COLUMNS, import_file
from hub.settings import load_settings

SITES = ("RFH", "BARNET", "CHASE")


def nhs_number(n: int) -> str:
    """The n-th valid NHS number from 900000000x upwards (prefixes whose check digit would be 10 are skipped)."""
    prefix = 900_000_000 + n * 2
    while True:
        digits = str(prefix)
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            return digits + str(0 if check == 11 else check)
        prefix += 1


def extract_rows(count: int, *, start: datetime) -> list[dict[str, str]]:
    rows = []
    for n in range(count):
        at = start + timedelta(days=1 + n % 60, minutes=15 * (n % 32))
        rows.append(
            {
                "appointment_ref": f"A{n:06d}",
                "patient_ref": f"MRN{n:06d}",
                "nhs_number": nhs_number(n),
                "given_name": "Patient",
                "family_name": f"Number{n}",
                "date_of_birth": f"{1930 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                "mobile": f"07700 900{n % 1000:03d}" if n % 4 else "",
                "email": f"patient{n}@example.com" if n % 4 == 0 else "",
                "address_line_1": f"{1 + n % 200} Example Street",
                "address_line_2": "London",
                "postcode": "NW3 2QG",
                "contact_preference": "",
                "site_code": SITES[n % len(SITES)],
                "clinic": "Cardiology outpatients",
                "specialty": "Cardiology",
                "clinician": "Dr A Example",
                "start": at.isoformat(timespec="seconds"),
                "duration_minutes": "30",
                "mode": ("in_person", "telephone", "video")[n % 3],
                "status": "booked",
                "transport_booked": "no",
                "interpreter_booked": "yes" if n % 10 == 0 else "no",
            }
        )
    return rows


def write_extract(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


async def run(rows: int, folder: Path) -> dict[str, Any]:
    database = folder / "hub.sqlite3"
    settings = load_settings(environ={}, overrides={"database_url": f"sqlite:///{database}", "secret_key": SECRET})
    db = await connect(settings.database_url, readers=settings.sqlite_readers)
    try:
        await migrate(db)
        async with db.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Bench Trust', '')")
            for code in SITES:
                await tx.execute(
                    "INSERT INTO sites (organisation_id, code, name) VALUES (1, ?, ?)", (code, f"{code} hospital")
                )
        clock = Clock()
        extract = folder / "extract.csv"
        write_extract(extract, extract_rows(rows, start=clock.now().astimezone(UTC).replace(microsecond=0)))

        runs = []
        for label in ("first", "again"):
            began = time.perf_counter()
            report = await import_file(db, extract, organisation_code="RAL", settings=settings, clock=clock)
            seconds = time.perf_counter() - began
            runs.append(
                {
                    "run": label,
                    "rows": report.rows,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(report.rows / seconds, 1),
                    "outcomes": dict(report.outcomes),
                    "rejected": len(report.rejected),
                }
            )
            print(f"{label}: {report.rows} rows in {seconds:.1f}s", file=sys.stderr)
        counted = await db.fetch_one(
            "SELECT (SELECT COUNT(*) FROM patients) AS patients, (SELECT COUNT(*) FROM appointments) AS appointments,"
            " (SELECT COUNT(*) FROM outbox_messages) AS outbox_messages"
        )
    finally:
        await db.close()
    return {
        "benchmark": "csv_import",
        "rows": rows,
        "runs": runs,
        "database": {**(counted or {}), "size_bytes": database.stat().st_size},
        "sqlite_synchronous": "FULL",
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = asyncio.run(run(args.rows, Path(folder)))
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
