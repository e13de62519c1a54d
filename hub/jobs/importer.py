"""python -m hub import FILE.csv: the nightly extract, one appointment per row with its patient's fields; or a slots
file (its header has slot_ref), one bookable slot per row.

Each row is applied whole or not at all (patient and appointment in one transaction); rejected rows are
reported with their line numbers and reasons; the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hub.clock import Clock, london
from hub.db import Database, Transaction
from hub.rules.feed import Applied, Appointment, Patient, check_ref, read_appointment, read_patient
from hub.rules.slots import read_slot
from hub.settings import Settings
from hub.store.feed import upsert_appointment, upsert_patient
from hub.store.slots import upsert_slot
from hub.vocabulary import HospitalStatus, Mode

COLUMNS = (
    "appointment_ref",
    "patient_ref",
    "nhs_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "mobile",
    "email",
    "address_line_1",
    "address_line_2",
    "address_line_3",
    "address_line_4",
    "address_line_5",
    "postcode",
    "contact_preference",
    "site_code",
    "clinic",
    "specialty",
    "clinician",
    "start",
    "duration_minutes",
    "mode",
    "status",
    "transport_booked",
    "interpreter_booked",
)
# The slots file: what PUT /api/v1/slots/{slot_ref} takes, one slot a row.
SLOT_COLUMNS = (
    "slot_ref",
    "site_code",
    "clinic",
    "specialty",
    "clinician",
    "start",
    "duration_minutes",
    "mode",
    "status",
    "appointment_ref",
)
SLOT_REQUIRED = ("slot_ref", "site_code", "start", "duration_minutes")
REQUIRED = (
    "appointment_ref",
    "patient_ref",
    "given_name",
    "family_name",
    "date_of_birth",
    "site_code",
    "start",
    "duration_minutes",
)
# Rows committed together: one disk sync per chunk instead of per row, the write lock held only briefly.
CHUNK = 200
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0", "")


@dataclass
class Report:
    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def _flag(value: str) -> bool | str:
    """yes/no and friends as a boolean; anything else is passed on for the validator to refuse."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return value


def _whole(value: str | None) -> int | str | None:
    """A cell of digits as a number; anything else is passed on for the validator to refuse."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 6 else value


def row_bodies(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A CSV row as the API's patient and appointment bodies."""
    get = lambda name: (row.get(name) or "").strip() or None  # noqa: E731
    lines = [line for i in range(1, 6) if (line := get(f"address_line_{i}"))]
    patient = {
        "nhs_number": get("nhs_number"),
        "given_name": get("given_name"),
        "family_name": get("family_name"),
        "date_of_birth": get("date_of_birth"),
        "mobile": get("mobile"),
        "email": get("email"),
        "contact_preference": get("contact_preference"),
        "postal_address": {"lines": lines, "postcode": get("postcode")} if lines or get("postcode") else None,
    }
    appointment = {
        "patient_ref": get("patient_ref"),
        "site_code": get("site_code"),
        "clinic": get("clinic"),
        "specialty": get("specialty"),
        "clinician": get("clinician"),
        "start": get("start"),
        "duration_minutes": _whole(get("duration_minutes")),
        "mode": get("mode") or Mode.IN_PERSON,
        "status": get("status") or HospitalStatus.BOOKED,
        "transport_booked": _flag(row.get("transport_booked") or ""),
        "interpreter_booked": _flag(row.get("interpreter_booked") or ""),
    }
    return patient, appointment


def slot_body(row: dict[str, str]) -> dict[str, Any]:
    """A slots file's row as the API's slot body."""
    get = lambda name: (row.get(name) or "").strip() or None  # noqa: E731
    return {
        "site_code": get("site_code"),
        "clinic": get("clinic"),
        "specialty": get("specialty"),
        "clinician": get("clinician"),
        "start": get("start"),
        "duration_minutes": _whole(get("duration_minutes")),
        "mode": get("mode") or Mode.IN_PERSON,
        "status": get("status") or "free",
        "appointment_ref": get("appointment_ref"),
    }


def _rows(
    source: TextIO, columns: tuple[str, ...] = COLUMNS, required: tuple[str, ...] = REQUIRED
) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(source)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the CSV has no column {', '.join(missing)} (columns: {', '.join(columns)})")
    unknown = [c for c in reader.fieldnames or [] if c not in columns]
    if unknown:
        raise ValueError(f"unknown column {', '.join(unknown)} (columns: {', '.join(columns)})")
    for row in reader:
        if None in row:  # more cells than headers
            yield reader.line_num, {"__extra__": "x"}
            continue
        yield reader.line_num, row


async def import_csv(
    db: Database,
    source: TextIO,
    *,
    organisation_id: int,
    settings: Settings,
    clock: Clock,
    actor: str = "csv-import",
    progress: Callable[[int], None] | None = None,
) -> Report:
    report = Report()
    checked: list[tuple[int, dict[str, str], Patient, Appointment]] = []
    for line, row in _rows(source):
        report.rows += 1
        if progress:
            progress(report.rows)
        if "__extra__" in row:
            report.rejected.append((line, "more cells than columns"))
            continue
        patient_body, appointment_body = row_bodies(row)
        patient, patient_errors = read_patient(patient_body, today=london(clock.now()).date())
        appointment, appointment_errors = read_appointment(appointment_body)
        errors = (
            check_ref("appointment_ref", row.get("appointment_ref") or "")
            + check_ref("patient_ref", row.get("patient_ref") or "")
            + patient_errors
            + appointment_errors
        )
        if patient is None or appointment is None or errors:
            report.rejected.append((line, "; ".join(f"{e['field']} {e['message']}" for e in errors)))
            continue
        checked.append((line, row, patient, appointment))
        if len(checked) == CHUNK:
            await _apply_chunk(db, checked, report, organisation_id, settings, clock, actor)
            checked = []
    await _apply_chunk(db, checked, report, organisation_id, settings, clock, actor)
    report.rejected.sort()
    return report


async def _apply_chunk(
    db: Database,
    rows: list[tuple[int, dict[str, str], Patient, Appointment]],
    report: Report,
    organisation_id: int,
    settings: Settings,
    clock: Clock,
    actor: str,
) -> None:
    """Many rows to one commit (one disk sync), each row inside its own savepoint: whole or not at all."""
    if not rows:
        return
    async with db.write() as tx:
        for line, row, patient, appointment in rows:
            await tx.execute("SAVEPOINT import_row")
            try:
                applied = await _apply(tx, row, patient, appointment, organisation_id, settings, clock, actor)
            except _Rejected as exc:
                await tx.execute("ROLLBACK TO SAVEPOINT import_row")
                report.rejected.append((line, str(exc)))
            else:
                report.outcomes[applied.outcome] += 1
            await tx.execute("RELEASE SAVEPOINT import_row")


async def _apply(
    tx: Transaction,
    row: dict[str, str],
    patient: Patient,
    appointment: Appointment,
    organisation_id: int,
    settings: Settings,
    clock: Clock,
    actor: str,
) -> Applied:
    await upsert_patient(
        tx,
        organisation_id=organisation_id,
        ref=row["patient_ref"].strip(),
        values=patient.values(),
        actor=actor,
        now=clock.now(),
        settings=settings,
    )
    applied = await upsert_appointment(
        tx,
        organisation_id=organisation_id,
        ref=row["appointment_ref"].strip(),
        values=appointment.values(),
        actor=actor,
        now=clock.now(),
        settings=settings,
    )
    if applied.outcome == "rejected":
        raise _Rejected("; ".join(f"{e['field']} {e['message']}" for e in applied.errors))
    return applied


class _Rejected(Exception):
    pass


async def import_slots_csv(
    db: Database, source: TextIO, *, organisation_id: int, clock: Clock, actor: str = "csv-import"
) -> Report:
    """A slots file: each row checked as PUT /api/v1/slots takes it, applied in its own savepoint."""
    report = Report()
    checked: list[tuple[int, str, dict[str, Any]]] = []
    for line, row in _rows(source, SLOT_COLUMNS, SLOT_REQUIRED):
        report.rows += 1
        if "__extra__" in row:
            report.rejected.append((line, "more cells than columns"))
            continue
        slot, errors = read_slot(slot_body(row))
        errors = check_ref("slot_ref", (row.get("slot_ref") or "").strip()) + errors
        if slot is None or errors:
            report.rejected.append((line, "; ".join(f"{e['field']} {e['message']}" for e in errors)))
            continue
        checked.append((line, row["slot_ref"].strip(), slot.values()))
    for start in range(0, len(checked), CHUNK):
        async with db.write() as tx:
            for line, ref, values in checked[start : start + CHUNK]:
                applied = await upsert_slot(
                    tx, organisation_id=organisation_id, ref=ref, values=values, actor=actor, now=clock.now()
                )
                if applied.outcome == "rejected":
                    report.rejected.append((line, "; ".join(f"{e['field']} {e['message']}" for e in applied.errors)))
                else:
                    report.outcomes[applied.outcome] += 1
    report.rejected.sort()
    return report


def _is_slots_file(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", newline="") as source:
        return "slot_ref" in next(csv.reader(source), [])


async def import_file(db: Database, path: Path, *, organisation_code: str, settings: Settings, clock: Clock) -> Report:
    org = await db.fetch_one("SELECT id FROM organisations WHERE code = ?", (organisation_code,))
    if org is None:
        raise ValueError(f"no organisation with code {organisation_code}")
    with path.open(encoding="utf-8-sig", newline="") as counting:
        total = sum(1 for _ in counting) - 1
    on_terminal = sys.stderr.isatty()

    def progress(done: int) -> None:
        if on_terminal and (done % 100 == 0 or done == total):
            filled = int(30 * done / max(total, 1))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} rows")
            sys.stderr.flush()

    with path.open(encoding="utf-8-sig", newline="") as source:
        if _is_slots_file(path):
            report = await import_slots_csv(db, source, organisation_id=int(org["id"]), clock=clock)
        else:
            report = await import_csv(
                db, source, organisation_id=int(org["id"]), settings=settings, clock=clock, progress=progress
            )
    if on_terminal:
        sys.stderr.write("\n")
    return report
