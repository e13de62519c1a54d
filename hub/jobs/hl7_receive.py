"""One HL7 v2 message in, one ACK out: read it, route it by sending facility and type, apply it whole or not at all
(a savepoint of a commit shared with the messages waiting from other connections) through the same feed functions
as the JSON API and the CSV import (hub.store.feed, and so the appointment lifecycle), and answer AA, AE (nothing
applied, ERR names the field) or AR (unknown facility or type).

A repeated message (same facility, same MSH-10) gets the stored answer again and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hub.clock import Clock, london
from hub.db import Database, Transaction
from hub.rules import hl7_mapping as mapping
from hub.rules.feed import read_appointment, read_patient
from hub.rules.hl7_message import Header, Hl7Error, Message, Problem, ack, parse
from hub.rules.hl7_outbound import entity_id
from hub.settings import Settings
from hub.store import hl7 as log
from hub.store.feed import upsert_appointment, upsert_patient
from hub.store.feed_locks import Touches, feed_write_all
from hub.store.hl7_outbound import remember_ids
from hub.store.letters import upsert_letter
from hub.store.patient_merge import merge_patients
from hub.vocabulary import RecordType

logger = logging.getLogger(__name__)
ACCEPT, ERROR, REJECT = "AA", "AE", "AR"
OUTDATED = "older than a message already applied: not applied"
_BATCH = 100  # most messages in one group commit
SUPPORTED = {
    "SIU": tuple(mapping.SIU_STATUS),
    "ADT": (*mapping.ADT_PATIENT, mapping.ADT_MERGE),
    "MDM": mapping.MDM_LETTER,
}


class Rejected(Exception):
    """Nothing is applied: the transaction is rolled back and the message answered AE with these problems."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__(", ".join(p.field for p in problems))
        self.problems = problems


@dataclass
class _Batch:
    """Messages waiting for the next group commit, and the task committing them."""

    waiting: list[tuple[Message, mapping.Trust, asyncio.Future[str]]] = field(default_factory=list)
    flusher: asyncio.Future[None] | None = None


@dataclass(frozen=True)
class Receiver:
    """What every message needs: the database, settings, clock, and each sending facility's trust and its id."""

    db: Database
    settings: Settings
    clock: Clock
    trusts: dict[str, mapping.Trust]
    organisation_ids: dict[str, int]
    _batch: _Batch = field(default_factory=lambda: _Batch())

    async def receive(self, block: bytes) -> str:
        """The ACK for one MLLP block (never an exception: a failure of ours is an AE, and logged without data)."""
        now = self.clock.now()
        try:
            message = parse(block, received_at=now)
        except Hl7Error as exc:
            return _answer(None, REJECT, now, "the message could not be read", (Problem(exc.field, exc.message),))
        header = message.header
        trust = self.trusts.get(header.sending_facility)
        if trust is None:
            return _answer(
                header, REJECT, now, "unknown sending facility", (Problem("MSH-4", "is not in hl7.facilities", "204"),)
            )
        if header.trigger not in SUPPORTED.get(header.message_type, ()):
            return _answer(
                header,
                REJECT,
                now,
                "unsupported message type",
                (Problem("MSH-9", f"{header.message_type[:10]} {header.trigger[:10]} is not accepted", "200"),),
            )
        return await self._apply(message, trust)

    async def _apply(self, message: Message, trust: mapping.Trust) -> str:
        """Queued for the next group commit: the messages waiting from every connection are applied in one
        transaction, each in a savepoint of its own, and answered once it has committed (one disk sync for many)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._batch.waiting.append((message, trust, future))
        if self._batch.flusher is None or self._batch.flusher.done():
            self._batch.flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        waiting = self._batch.waiting
        while waiting:
            await asyncio.sleep(0)  # let messages that arrived with this one join it
            batch, waiting[:] = waiting[:_BATCH], waiting[_BATCH:]
            try:
                async with self._write(batch) as tx:
                    answers = [await self._one(tx, message, trust) for message, trust, _ in batch]
                logger.debug("HL7 batch of %d committed", len(batch))
            except Exception as exc:  # the commit failed: nothing was applied, and the senders will retry
                logger.error("HL7 batch of %d could not be committed: %s", len(batch), type(exc).__name__)
                answers = [_internal(message.header, self.clock.now()) for message, _, _ in batch]
            for (_, _, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    def _write(
        self, batch: list[tuple[Message, mapping.Trust, asyncio.Future[str]]]
    ) -> AbstractAsyncContextManager[Transaction]:
        """A batch's transaction: on PostgreSQL it locks the patients and references its messages name, as the JSON
        API's records do, so patients' own writes about others go on beside it; a batch with a merge (A40, which
        moves one patient's rows to another) or a message whose references cannot be read takes the whole hub's."""
        records = []
        for message, trust, _ in batch:
            touches = self._touches(message, trust)
            if touches is None:
                return self.db.write()
            records.append(touches)
        return feed_write_all(self.db, records)

    def _touches(self, message: Message, trust: mapping.Trust) -> Touches | None:
        header = message.header
        if header.message_type == "ADT" and header.trigger == mapping.ADT_MERGE:
            return None
        try:
            org, mrn = self.organisation_ids[trust.organisation], mapping.patient_ref(message, trust)
            if header.message_type == "SIU":
                return Touches(org, mrn, appointment_ref=mapping.appointment_ref(message))
            if header.message_type == "MDM":
                letter, replaces, appointment = mapping.letter_refs(message)
                return Touches(org, mrn, appointment_ref=appointment, letter_ref=letter, replaces=replaces)
            return Touches(org, mrn)
        except Exception:  # answered when applied (an AE naming the field); its locks are the whole hub's
            return None

    async def _one(self, tx: Transaction, message: Message, trust: mapping.Trust) -> str:
        header, now = message.header, self.clock.now()
        stored = await log.get_answer(tx, header.sending_facility, header.control_id)
        if stored is not None:
            return stored
        await tx.execute("SAVEPOINT hl7_message")
        try:
            text = await _APPLY[header.message_type](
                self, tx, message, trust, self.organisation_ids[trust.organisation]
            )
            code, answer = ACCEPT, _answer(header, ACCEPT, now, text)
        except (Rejected, Hl7Error) as exc:
            await tx.execute("ROLLBACK TO SAVEPOINT hl7_message")
            problems = exc.problems if isinstance(exc, Rejected) else (Problem(exc.field, exc.message),)
            code, answer = ERROR, _answer(header, ERROR, now, "nothing was applied", problems)
        except Exception as exc:  # a fault of ours: undone, not remembered (a resend tries again), the batch goes on
            await tx.execute("ROLLBACK TO SAVEPOINT hl7_message")
            await tx.execute("RELEASE SAVEPOINT hl7_message")
            # The exception's type only: its text may quote a value from the message (a name, an NHS number).
            logger.error("HL7 %s %s could not be applied: %s", header.kind, header.control_id, type(exc).__name__)
            return _internal(header, now)
        await tx.execute("RELEASE SAVEPOINT hl7_message")
        await self._record(tx, header, code, answer)  # a repeat gets this same answer
        return answer

    async def _record(self, tx: Transaction, header: Header, code: str, answer: str) -> None:
        await log.record_answer(
            tx,
            facility=header.sending_facility,
            control_id=header.control_id,
            message_type=header.kind,
            code=code,
            ack=answer,
            now=self.clock.now(),
        )

    @property
    def today(self) -> date:
        return london(self.clock.now()).date()

    def actor(self, header: Header) -> str:
        return f"hl7:{header.sending_facility}"[:100]

    async def ensure_patient(
        self,
        tx: Transaction,
        message: Message,
        trust: mapping.Trust,
        organisation_id: int,
        *,
        update: bool,
        base: dict[str, Any] | None = None,
    ) -> str:
        """The PID's patient, created when unknown (from `base` and PID); updated with what PID sends only when
        `update` (ADT). A record merged away is refused: the hospital must name the surviving one."""
        mrn = mapping.patient_ref(message, trust)
        found = await log.patient_record(tx, organisation_id, mrn)
        if found is not None and found[1] is not None:
            raise Rejected(Problem("PID-3", "this MRN was merged into another patient's (an A40)", "204"))
        held = found[2] if found is not None else None
        if held is not None and not update:
            return mrn
        body = {**(held or base or {}), **mapping.patient_body(message, trust)}
        patient, errors = read_patient({k: v for k, v in body.items() if v is not None}, today=self.today)
        if patient is None or errors:
            raise Rejected(*mapping.problems_from(errors, mapping.PATIENT_FIELDS))
        await upsert_patient(
            tx,
            organisation_id=organisation_id,
            ref=mrn,
            values=patient.values(),
            actor=self.actor(message.header),
            now=self.clock.now(),
            settings=self.settings,
        )
        await log.mark_applied(tx, organisation_id, RecordType.PATIENT, mrn, message.header.sent_at)
        return mrn


async def _siu(receiver: Receiver, tx: Transaction, message: Message, trust: mapping.Trust, org: int) -> str:
    ref = mapping.appointment_ref(message)
    changes = mapping.appointment_body(message, trust)
    mrn = await receiver.ensure_patient(tx, message, trust, org, update=False)
    if await log.is_outdated(tx, org, RecordType.APPOINTMENT, ref, message.header.sent_at):
        return OUTDATED
    held = await log.appointment_body(tx, org, ref)
    if held is None and "start" not in changes and message.header.trigger in ("S15", "S17", "S26"):
        raise Rejected(Problem("SCH-2", "no appointment with this reference", "204"))
    body: dict[str, Any] = {**(held or {}), **changes, "patient_ref": mrn}
    appointment, errors = read_appointment(body)
    if appointment is None or errors:
        raise Rejected(*mapping.problems_from(errors, mapping.APPOINTMENT_FIELDS))
    applied = await upsert_appointment(
        tx,
        organisation_id=org,
        ref=ref,
        values=appointment.values(),
        actor=receiver.actor(message.header),
        now=receiver.clock.now(),
        settings=receiver.settings,
        names_time="start" in changes,  # without timing, the time is the hub's own: it settles no hub change
    )
    if applied.outcome == "rejected":
        raise Rejected(*mapping.problems_from(list(applied.errors), mapping.APPOINTMENT_FIELDS))
    await log.mark_applied(tx, org, RecordType.APPOINTMENT, ref, message.header.sent_at)
    # The PAS's own ids, for the SRMs that tell it of the patient's actions on this appointment.
    await remember_ids(tx, org, ref, placer_id=entity_id(message, "SCH", 1), filler_id=entity_id(message, "SCH", 2))
    return applied.outcome


async def _adt(receiver: Receiver, tx: Transaction, message: Message, trust: mapping.Trust, org: int) -> str:
    mrn = mapping.patient_ref(message, trust)
    if await log.is_outdated(tx, org, RecordType.PATIENT, mrn, message.header.sent_at):
        return OUTDATED
    if message.header.trigger != mapping.ADT_MERGE:
        await receiver.ensure_patient(tx, message, trust, org, update=True)
        return "applied"
    prior = mapping.merged_ref(message, trust)
    merged = await log.find_patient(tx, org, prior)
    # A survivor the hub has not met yet starts as the merged record was (PID's fields on top).
    base = await log.patient_body(tx, org, prior) if merged is not None and merged[1] is None else None
    await receiver.ensure_patient(tx, message, trust, org, update=True, base=base)
    surviving = await log.find_patient(tx, org, mrn)
    if merged is None or merged[1] is not None or surviving is None or prior == mrn:
        return "nothing to merge"
    await merge_patients(
        tx,
        organisation_id=org,
        surviving_id=surviving[0],
        merged_id=merged[0],
        actor=receiver.actor(message.header),
        now=receiver.clock.now(),
        templates=receiver.settings.notify.templates,
    )
    return "merged"


async def _mdm(receiver: Receiver, tx: Transaction, message: Message, trust: mapping.Trust, org: int) -> str:
    found = mapping.letter(message, trust, max_bytes=receiver.settings.letter_max_bytes)
    mrn = await receiver.ensure_patient(tx, message, trust, org, update=False)
    applied = await upsert_letter(
        tx,
        organisation_id=org,
        ref=found.ref,
        replaces=found.replaces,
        kind=str(found.kind),
        title=found.title,
        content=found.content,
        actor=receiver.actor(message.header),
        now=receiver.clock.now(),
        appointment_ref=found.appointment_ref,
        patient_ref=mrn,
    )
    if applied.outcome == "rejected":
        raise Rejected(*mapping.problems_from(list(applied.errors), mapping.LETTER_FIELDS))
    return applied.outcome


_APPLY = {"SIU": _siu, "ADT": _adt, "MDM": _mdm}


def _internal(header: Header, now: Any) -> str:
    return _answer(header, ERROR, now, "the hub could not apply the message", (Problem("MSH", "internal error"),))


def _answer(header: Header | None, code: str, now: Any, text: str, problems: tuple[Problem, ...] = ()) -> str:
    return ack(header, code, control_id=f"HUB{secrets.token_hex(8)}", now=now, text=text, problems=problems)
