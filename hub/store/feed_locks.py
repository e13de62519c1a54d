"""Which locks a hospital record's transaction takes on PostgreSQL: its patients and its references, in place of
the whole hub (hub.db.postgres), so that records about different patients, and the patients' own writes, never
wait for each other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hub.db import Database, Transaction
from hub.db.dialect import POSTGRESQL


@dataclass(frozen=True)
class Touches:
    """What one hospital record may write, for its locks: the rows of its patient (found by `patient_ref`; for a
    letter also by `appointment_ref`, whose patient it may follow, and by the letter itself, which it may take
    from another patient) and a row per reference it may create."""

    organisation_id: int
    patient_ref: str | None
    appointment_ref: str | None = None
    letter_ref: str | None = None
    replaces: str | None = None  # a letter filed from now on under `letter_ref` (HL7 MDM^T10)

    def keys(self) -> list[str]:
        org = self.organisation_id
        found = [patient_ref_key(org, self.patient_ref)] if self.patient_ref is not None else []
        if self.appointment_ref is not None:
            found.append(appointment_ref_key(org, self.appointment_ref))
        found += [f"letter_ref:{org}:{ref}" for ref in (self.letter_ref, self.replaces) if ref is not None]
        return found


@asynccontextmanager
async def feed_write(
    db: Database, organisation_id: int, patient_ref: str | None, *, appointment_ref: str | None = None
) -> AsyncIterator[Transaction]:
    """The transaction for a hospital record about one patient (see `feed_write_all`)."""
    async with feed_write_all(db, [Touches(organisation_id, patient_ref, appointment_ref)]) as tx:
        yield tx


@asynccontextmanager
async def feed_write_all(db: Database, records: list[Touches]) -> AsyncIterator[Transaction]:
    """The transaction for hospital records (one, or an HL7 batch's). On PostgreSQL (hub.db.postgres) it locks, in
    place of the whole hub, each record's patient when the record exists (so the patient's own confirm, cancel or
    choice of contact and the hospital's update take turns, as the lifecycle needs) and a key per reference a
    record may create (the patient's, the appointment's, the letter's: two records making one row take turns, and
    the second finds the first's).

    The patients are read before the transaction, to know what to lock, and again inside it: when HL7 or a CSV
    import made one in between, the first transaction ends unused and the records are written under the
    lock of the whole hub instead (rare; taking a patient's lock inside the transaction, after the keys, could
    deadlock with another record about the same patient)."""
    if db.dialect != POSTGRESQL:  # one writer at a time whatever it locks: nothing to read first
        async with db.write() as tx:
            yield tx
        return
    before = await _patients_of(db, records)
    keys = [key for record in records for key in record.keys()]
    async with db.write(patients=[p for p in before if p is not None], keys=keys) as tx:
        if await _patients_of(tx, records) == before:
            yield tx
            return
    async with db.write() as tx:
        yield tx


async def _patients_of(db: Database | Transaction, records: list[Touches]) -> list[int | None]:
    found: list[int | None] = []
    for record in records:
        org = record.organisation_id
        if record.patient_ref is not None:
            found.append(await _patient_id(db, org, record.patient_ref))
        if record.letter_ref is None:
            continue
        owners: list[tuple[str, tuple[int | str, ...]]] = [
            (_LETTER_PATIENT, (org, ref, org, ref)) for ref in (record.letter_ref, record.replaces) if ref is not None
        ]
        if record.appointment_ref is not None:
            owners.append((_APPOINTMENT_PATIENT, (org, record.appointment_ref)))
        for sql, params in owners:
            row = await db.fetch_one(sql, params)
            found.append(int(row["patient_id"]) if row is not None else None)
    return found


_APPOINTMENT_PATIENT = "SELECT patient_id FROM appointments WHERE organisation_id = ? AND ref = ?"
# A letter by its number, or by a number it had before a T10 replaced it: a record naming that number may replace
# the letter (hub.store.letters.upsert_letter), so the letter's patient is locked, as its own writers lock it.
_LETTER_PATIENT = (
    "SELECT patient_id FROM letters WHERE organisation_id = ? AND (ref = ? OR id IN"
    " (SELECT letter_id FROM replaced_letter_refs WHERE organisation_id = ? AND ref = ?))"
)


async def _patient_id(db: Database | Transaction, organisation_id: int, ref: str) -> int | None:
    row = await db.fetch_one("SELECT id FROM patients WHERE organisation_id = ? AND mrn = ?", (organisation_id, ref))
    return int(row["id"]) if row is not None else None


def patient_ref_key(organisation_id: int, ref: str) -> str:
    return f"patient_ref:{organisation_id}:{ref}"


def appointment_ref_key(organisation_id: int, ref: str) -> str:
    return f"appointment_ref:{organisation_id}:{ref}"
