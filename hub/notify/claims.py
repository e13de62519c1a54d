"""Claiming messages from the outbox for a worker to send: the send policy, the shared per-minute limit, the
per-number caps, leases and their fencing tokens (see hub.notify.sender)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.db.dialect import SKIP_LOCKED
from hub.notify import OutgoingMessage
from hub.rules.sending import PDF_KINDS, RetryPolicy, attempts_used_up, in_quiet_hours, postal_address
from hub.settings import NotifyTemplates
from hub.store.outbox import expire_unsent_codes, goes_as_template
from hub.store.rerouting import requeued, write_about_messages
from hub.vocabulary import Channel, Lane, LetterKind, MessageStatus

WINDOW = timedelta(seconds=60)
# Requests are counted when claimed and arrive a moment later; the margin keeps any 60 s window at Notify
# within the limit.
WINDOW_MARGIN = timedelta(seconds=1)
HOUR = timedelta(hours=1)
LEASE_MARGIN = timedelta(seconds=2)
ACTOR = "outbox"  # the sending side, as the audit names it


@dataclass(frozen=True)
class SendPolicy:
    per_minute: int = 3000
    batch: int = 25
    lease: timedelta = timedelta(seconds=120)
    request_timeout: timedelta = timedelta(seconds=10)  # the Notify client's, for one request
    quiet_start: int = 20
    quiet_end: int = 8
    per_number_per_hour: int = 100
    identical_per_number_per_hour: int = 20
    code_lifetime: timedelta = timedelta(seconds=150)
    retry: RetryPolicy = RetryPolicy()
    # A message put back after a temporary failure, whose channel the patient stopped meanwhile, goes another way.
    templates: NotifyTemplates = field(default_factory=NotifyTemplates)

    @property
    def bulk_per_minute(self) -> int:
        """What bulk messages may use: security codes go at once, outside the workers' claims, and are counted
        in the same limit, so 2% of it (at least one request) is kept free for them."""
        return self.per_minute - max(1, self.per_minute // 50)

    @property
    def held_for(self) -> timedelta:
        """The lease a claim takes: the setting, but never less than a look-up and a send can take, plus a
        margin, so that a worker that is not paused always finishes (or gives up) within it."""
        return max(self.lease, 2 * self.request_timeout + LEASE_MARGIN)


@dataclass(frozen=True)
class Claimed:
    id: int
    token: int  # the claim's number (outbox_messages.claims): fencing
    check_first: bool
    final: bool  # attempts used up: only looked up, and failed when Notify does not have it
    attempts: int  # Notify's answers so far
    message: OutgoingMessage


async def _capped(tx: Transaction, row: Row, now: datetime, policy: SendPolicy) -> bool:
    """Mobile networks block numbers that get too many texts: 100 an hour, or 20 of the same one."""
    if row["channel"] != Channel.SMS:
        return False
    since = to_db(now - HOUR)
    # Messages being sent count too: those claimed earlier in this batch, or by another worker, have no sent_at yet.
    counts = await tx.fetch_one(
        "SELECT COUNT(*) AS any_kind, SUM(CASE WHEN template_id = ? AND personalisation = ? THEN 1 ELSE 0 END)"
        " AS same FROM outbox_messages WHERE recipient = ? AND (sent_at > ? OR status = ?)",
        (row["template_id"], row["personalisation"], row["recipient"], since, MessageStatus.SENDING),
    )
    assert counts is not None
    return bool(
        counts["any_kind"] >= policy.per_number_per_hour
        or (counts["same"] or 0) >= policy.identical_per_number_per_hour
    )


async def claim_batch(db: Database, *, now: datetime, policy: SendPolicy) -> list[Claimed]:
    worker = secrets.token_hex(8)  # which claim took it, for whoever reads the table
    skip_locked = SKIP_LOCKED[db.dialect]
    # Claims take their own lock: workers count the shared per-minute limit one at a time, without waiting
    # behind patients' writes; rows another transaction holds are skipped, never waited for.
    await _put_back_lapsed(db, now=now, policy=policy)
    async with db.write(lock="outbox") as tx:
        # Only the last minute counts; an hour is kept so that a clock set back a little still counts right.
        await tx.execute("DELETE FROM notify_requests WHERE at < ?", (to_db(now - HOUR),))
        await expire_unsent_codes(tx, now - policy.code_lifetime)
        used = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM notify_requests WHERE at > ?", (to_db(now - WINDOW - WINDOW_MARGIN),)
        )
        assert used is not None
        room = min(policy.batch, policy.bulk_per_minute - int(used["n"]))
        if room <= 0:
            return []
        held = [
            r["channel"]
            for r in await tx.fetch_all("SELECT channel FROM channel_holds WHERE held_until > ?", (to_db(now),))
        ]
        sql = (
            "SELECT id, kind, channel, recipient, template_id, personalisation, attempts, check_first, claims,"
            " pdf_letter_id, appointment_id, patient_id FROM outbox_messages"
            f" WHERE status = '{MessageStatus.QUEUED}' AND lane = '{Lane.BULK}' AND next_attempt_at <= ?"
        )
        params: list[Any] = [to_db(now)]
        if in_quiet_hours(now, start=policy.quiet_start, end=policy.quiet_end):
            sql += " AND urgent = 1"
        if held:
            sql += f" AND channel NOT IN ({', '.join('?' for _ in held)})"
            params += held
        rows = await tx.fetch_all(sql + f" ORDER BY next_attempt_at, id LIMIT ?{skip_locked}", (*params, room))
        claimed: list[Claimed] = []
        requests = 0
        for row in rows:
            if await _capped(tx, row, now, policy):
                await tx.execute(
                    "UPDATE outbox_messages SET next_attempt_at = ? WHERE id = ?",
                    (to_db(now + timedelta(minutes=10)), row["id"]),
                )
                continue
            final = attempts_used_up(int(row["attempts"]), policy.retry)
            # A look-up by reference, then perhaps the send; after the last attempt, the look-up alone.
            cost = 1 if final else 2 if row["check_first"] else 1
            if requests + cost > room:
                break
            requests += cost
            # Attempts are not counted here: a claim lost to a crash is not an answer from Notify.
            await tx.execute(
                "UPDATE outbox_messages SET status = ?, claims = claims + 1, claimed_until = ?, claimed_by = ?"
                " WHERE id = ?",
                (MessageStatus.SENDING, to_db(now + policy.held_for), worker, row["id"]),
            )
            claimed.append(await _claimed(tx, row, final))
        for _ in range(requests):
            await tx.execute("INSERT INTO notify_requests (at) VALUES (?)", (to_db(now),))
    return claimed


# (The statuses and lanes the claims look for are literals in the SQL, so the planner knows how few rows the
# outbox_lease and outbox_due indexes lead to, which a generic plan for a parameter would not.)
_LAPSED = f"status = '{MessageStatus.SENDING}' AND lane = '{Lane.BULK}' AND claimed_until < ?"


async def _put_back_lapsed(db: Database, *, now: datetime, policy: SendPolicy) -> None:
    """A lease that ran out belongs to a worker that died or hung: its message, which may have reached Notify, goes
    back in the queue as after a failure, and is checked against what happened while it was out (`requeued`), under
    its patient's lock, so that a change to the appointment committing at this moment cannot pass it by. Each row is
    put back by a conditional UPDATE that skips rows another transaction holds: of two workers, one puts it back.

    So when a lease has lapsed (a worker died), the claim that follows waits for those patients' writes in flight,
    and on PostgreSQL for an ordinary write (an import's chunk, the housekeeping); otherwise a claim waits for no
    write but another claim."""
    found = await db.fetch_all(f"SELECT id FROM outbox_messages WHERE {_LAPSED}", (to_db(now),))
    if not found:
        return
    ids = sorted(int(r["id"]) for r in found)
    marks = ", ".join("?" for _ in ids)
    async with write_about_messages(db, ids) as tx:
        lapsed = await tx.fetch_all(
            "UPDATE outbox_messages SET status = ?, check_first = 1, claimed_until = NULL, claimed_by = NULL"
            f" WHERE id IN (SELECT id FROM outbox_messages WHERE id IN ({marks}) AND {_LAPSED}"
            f"{SKIP_LOCKED[db.dialect]}) RETURNING id",
            (MessageStatus.QUEUED, *ids, to_db(now)),
        )
        for row in sorted(lapsed, key=lambda r: int(r["id"])):
            await requeued(tx, int(row["id"]), templates=policy.templates, now=now, actor=ACTOR)


async def _claimed(tx: Transaction, row: Row, final: bool) -> Claimed:
    personalisation = json.loads(row["personalisation"])
    pdf = None
    if row["channel"] == Channel.LETTER:
        # The invitation goes as the hospital's own PDF letter when there is one (a cancellation or a change must
        # not: that letter gives the old news; nor a posted copy the appointment's move overtook: `goes_as_template`);
        # otherwise a templated letter to the address on record now.
        letter = None
        if row["pdf_letter_id"] is not None:
            letter = await tx.fetch_one("SELECT content FROM letters WHERE id = ?", (row["pdf_letter_id"],))
        elif row["kind"] in PDF_KINDS and not await goes_as_template(tx, int(row["id"])):
            letter = await tx.fetch_one(
                "SELECT content FROM letters WHERE appointment_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                (row["appointment_id"], LetterKind.APPOINTMENT_LETTER),
            )
        pdf = bytes(letter["content"]) if letter else None
        if pdf is None and row["patient_id"] is not None:
            personalisation.update(await _address(tx, int(row["patient_id"])))
    message = OutgoingMessage(
        reference=str(row["id"]),
        kind=row["kind"],
        channel=row["channel"],
        recipient=row["recipient"],
        template_id=row["template_id"],
        personalisation=personalisation,
        pdf=pdf,
    )
    return Claimed(
        int(row["id"]), int(row["claims"]) + 1, bool(row["check_first"]), final, int(row["attempts"]), message
    )


async def _address(tx: Transaction, patient_id: int) -> dict[str, str]:
    """Notify's address_line_1..7: the name, the address lines, the postcode last."""
    patient = await tx.fetch_one(
        "SELECT given_name, family_name, address_lines, postcode FROM patients WHERE id = ?", (patient_id,)
    )
    if patient is None:
        return {}
    name = f"{patient['given_name']} {patient['family_name']}"
    lines = postal_address(name, json.loads(patient["address_lines"]), patient["postcode"]) or []
    return {f"address_line_{i}": line for i, line in enumerate(lines, start=1)}
