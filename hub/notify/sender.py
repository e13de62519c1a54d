"""Draining the outbox: claim due messages, send them through the Notifier, record what happened.

Nothing lost: a message is only ever 'queued', 'sending' (under a lease), 'sent' or 'failed' (or 'cancelled' when no
longer needed, or, a security code the web process died before sending, 'expired'); a worker that dies
mid-send leaves its lease to run out, and the next claim puts the message back. Nothing sent twice: any attempt
that may have reached Notify (no answer, or a lost lease) is looked up by its reference before it is sent again.
Notify's per-minute limit is shared through the database by every worker process.

Fencing: each claim adds one to the message's `claims`, and that number is the claim's token. A result is recorded
only in a statement that checks the token is still the message's. Before the send the worker knows how long its
lease has left (its own claim's, or after a look-up the claim read again, token and all: no other worker can take
the message before the lease ends), and the request must be written while a whole request still fits in the lease
(checked as it is written to the socket, see hub.notify.govuk): a worker that lost its lease (it died, or was
paused past it) abandons the message. The lease is at least a look-up's time plus a send's time
plus a margin (`SendPolicy.held_for`). The window that remains: a worker paused for longer than the rest of its
lease in the last instant before its request is written to the socket, while another worker looks the message up,
finds nothing and sends it. Notify has no idempotency key to close it.

Attempts count Notify's answers (and our own requests' timeouts), never claims: a claim lost to a crash costs
nothing. A message that may have reached Notify is never marked failed on an error: once its attempts are used up,
the next claim only looks it up, and it fails only when Notify does not have it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.clock import Clock, from_db, to_db
from hub.db import Database, Transaction
from hub.db.dialect import is_transient
from hub.notify import Notifier, NotifyError, OutgoingMessage, TooLate
from hub.notify.claims import ACTOR, Claimed, SendPolicy, claim_batch
from hub.rules.sending import hub_refused, judge_failure
from hub.store.audit import audit_message
from hub.store.failures import Failure, Fence, fail_message
from hub.store.rerouting import requeued, write_about_messages
from hub.vocabulary import AuditAction, Lane, MessageStatus, SendFailure

__all__ = ["Claimed", "Outcome", "SendPolicy", "claim_batch", "deliver", "drain_once", "send_decoy", "send_immediate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    notify_id: str | None = None
    error: NotifyError | None = None
    not_at_notify: bool = False  # the final look-up found nothing: failed for good
    abandoned: bool = False  # the lease was lost before the send: nothing to record


async def deliver(
    db: Database,
    notifier: Notifier,
    clock: Clock,
    claimed: Claimed,
    policy: SendPolicy,
    *,
    claimed_at: float | None = None,
) -> Outcome:
    """Look the message up if it may be at Notify already, then send it while its claim holds. `claimed_at`: the
    time.monotonic() read before the claim was taken, when it was taken just now."""
    try:
        looked_up = claimed.check_first or claimed.final
        if looked_up:
            found = await notifier.find(claimed.message.reference)
            if found is not None:
                return Outcome(claimed, notify_id=found)
            if claimed.final:
                return Outcome(claimed, not_at_notify=True)
        # The send must start while a whole request still fits in the lease (checked again as it is written to
        # the socket); no other worker can claim the message before the lease ends. Straight after the claim, its
        # own lease is known; after a look-up, the claim is read again.
        if claimed_at is not None and not looked_up:
            started, lease_left = claimed_at, policy.held_for
        else:
            # Both clocks are read before the claim is: a worker paused during the read has a deadline already past.
            now, started = clock.now(), time.monotonic()
            left = await _lease_left(db, claimed, now)
            if left is None:
                return _abandoned(claimed)
            lease_left = left
        start_by = started + (lease_left - policy.request_timeout).total_seconds()
        if time.monotonic() > start_by:
            return _abandoned(claimed)
        return Outcome(claimed, notify_id=await notifier.send(claimed.message, start_by=start_by))
    except NotifyError as exc:
        return Outcome(claimed, error=exc)
    except TooLate:
        return _abandoned(claimed)


def _abandoned(claimed: Claimed) -> Outcome:
    log.warning("message %s: lease lost before the send; left to the next claim", claimed.id)
    return Outcome(claimed, abandoned=True)


async def _lease_left(db: Database, claimed: Claimed, now: datetime) -> timedelta | None:
    """How long the claim's lease lasts yet; None when its token is no longer the message's."""
    row = await db.fetch_one(
        f"SELECT claimed_until FROM outbox_messages WHERE id = ? AND status = '{MessageStatus.SENDING}' AND claims = ?",
        (claimed.id, claimed.token),
    )
    return from_db(row["claimed_until"]) - now if row is not None else None


async def record_outcomes(
    db: Database, outcomes: list[Outcome], *, now: datetime, policy: SendPolicy, rng: random.Random
) -> None:
    """Each statement changes only its message's row, fenced by its claim (or upserts a channel's hold), so on
    PostgreSQL the results take no lock of the whole hub: an invitation run's sends never hold up patients' sign-ins
    (hub.db.postgres). A message that failed for now may go back in the queue, and is then checked against what
    changed while it was out (hub.store.rerouting.requeued); one given up on (Notify refused it, or never had it)
    is failed as a receipt fails one (hub.store.failures), and may go by the patient's next channel. Both under the
    patient's lock, which the writes that withdraw messages (a change to the appointment, a STOP, the hospital's
    opt-out) hold too."""
    failing = [o.claimed.id for o in outcomes if (o.error is not None or o.not_at_notify) and not o.abandoned]
    async with write_about_messages(db, failing) as tx:
        # In channel order: two workers both told of a daily limit upsert the channels' holds in one order, and so
        # never wait for each other in a circle.
        given_up = []
        for outcome in sorted(outcomes, key=lambda o: (o.claimed.message.channel, o.claimed.id)):
            if (why := await _record(tx, outcome, now=now, policy=policy, rng=rng)) is not None:
                given_up.append((outcome.claimed, *why))
        # Last, after the channels' holds: giving up tells the hospital, and an event holds the events lock to the
        # commit (hub.db.postgres).
        for claimed, failure, changes in given_up:
            await fail_message(
                tx,
                claimed.id,
                fence=Fence(f"status = '{MessageStatus.SENDING}' AND claims = ?", (claimed.token,)),
                changes={"claimed_until": None, "claimed_by": None, "attempts": claimed.attempts + 1, **changes},
                failure=failure,
                templates=policy.templates,
                now=now,
                actor=ACTOR,
            )
    # Once a batch, whatever the number of messages refused with it.
    for channel in sorted({o.claimed.message.channel for o in outcomes if o.error and hub_refused(o.error.status)}):
        log.error(
            "Notify refused the hub's API key or clock (403): %s messages wait until %s. Check HUB_NOTIFY_API_KEY"
            " (a live key of this service) and the system clock.",
            channel,
            (now + policy.retry.hub_refused_wait).isoformat(),
        )


RECORD_RETRY_FIRST = 0.25  # seconds; doubled after each failure


async def record_durably(
    db: Database,
    outcomes: list[Outcome],
    *,
    clock: Clock,
    policy: SendPolicy,
    rng: random.Random,
    until: float,
) -> None:
    """Record results that are known, writing them again while the database is briefly out of reach (a dropped
    connection, a fail-over) until the monotonic time `until` (the end of the lease). Left unrecorded, a message
    that went would wait out its lease and then be looked up again. Writing twice is harmless: the statements are
    fenced, so one that committed before its connection dropped changes nothing the second time."""
    wait = RECORD_RETRY_FIRST
    while True:
        try:
            await record_outcomes(db, outcomes, now=clock.now(), policy=policy, rng=rng)
            return
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + wait > until:
                raise
            log.warning("recording %d results failed (%s); trying again", len(outcomes), type(exc).__name__)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 4.0)


async def _record(
    tx: Transaction, outcome: Outcome, *, now: datetime, policy: SendPolicy, rng: random.Random
) -> tuple[Failure, dict[str, Any]] | None:
    """What one attempt came to, in a statement that only changes the message while the claim is current; or, for
    a message to give up on, why and what its row says (given up on after the rest, by the caller)."""
    if outcome.abandoned:
        return None
    c = outcome.claimed
    mine = f"id = ? AND status = '{MessageStatus.SENDING}' AND claims = ?"
    theirs = (c.id, c.token)
    released = "claimed_until = NULL, claimed_by = NULL, attempts = attempts + 1"
    if outcome.not_at_notify:
        # Notify never had it: the sending failed, not the address, and another channel would go through the same
        # Notify (a long outage would turn every text into a letter). As a receipt's temporary failure after its
        # retries: the hospital hears, the booking centre chases it.
        detail = f"not at Notify after {c.attempts} attempts"
        return Failure(SendFailure.NOT_SENT, fail_over=False, detail=detail), {}
    if outcome.error is None:
        await tx.execute(
            f"UPDATE outbox_messages SET status = ?, notify_id = ?, sent_at = ?, {released}, check_first = 0,"
            f" error = '' WHERE {mine}",
            (MessageStatus.SENT, outcome.notify_id, to_db(now), *theirs),
        )
        return None
    exc = outcome.error
    verdict = judge_failure(
        status=exc.status, error=exc.error, attempts=c.attempts + 1, now=now, policy=policy.retry, rng=rng
    )
    note = f"notify {exc.status or 'no answer'} {exc.error}".strip()
    log.warning("message %s attempt %s: %s -> %s", c.id, c.attempts + 1, note, verdict.outcome)
    if verdict.outcome == "hold_channel":
        assert verdict.retry_at is not None
        # One statement, so that two workers told at once (each in its own transaction) both end with the hold.
        await tx.execute(
            "INSERT INTO channel_holds (channel, held_until) VALUES (?, ?)"
            " ON CONFLICT (channel) DO UPDATE SET held_until = excluded.held_until",
            (c.message.channel, to_db(verdict.retry_at)),
        )
    if verdict.outcome == "failed":  # Notify refused it: it does not have it
        # A ValidationError is about the message's own number or address: another channel may reach the patient. A
        # BadRequestError is the hub's side (a template missing or wanting a field the hub does not fill, a
        # team-only or trial key): every message would fail alike, and sending each another way would post every
        # patient a paid letter. It fails where it is, the booking centre has a task, and the operator is told.
        address = exc.error == "ValidationError"
        if not address:
            log.error("Notify refused a %s message (%s): check the template and the API key", c.message.channel, note)
        return Failure(SendFailure.REFUSED, fail_over=address, detail=note), {"error": note}
    assert verdict.retry_at is not None
    back = await tx.fetch_one(
        "UPDATE outbox_messages SET status = ?, next_attempt_at = ?, error = ?, claimed_until = NULL,"
        " claimed_by = NULL, check_first = CASE WHEN ? = 1 THEN 1 ELSE check_first END,"
        f" attempts = attempts + ? WHERE {mine} RETURNING id",
        (
            MessageStatus.QUEUED,
            to_db(verdict.retry_at),
            note,
            int(verdict.check_first),
            int(verdict.counts),
            *theirs,
        ),
    )
    if back is not None:
        await requeued(tx, c.id, templates=policy.templates, now=now, actor=ACTOR)
    return None


async def drain_once(
    db: Database, notifier: Notifier, clock: Clock, *, policy: SendPolicy, rng: random.Random | None = None
) -> int:
    """One round: claim what is due (within the limits), send it concurrently, record each result as soon as it
    is known (a worker that dies strands only the messages still in flight). Returns the count."""
    now, claimed_at = clock.now(), time.monotonic()
    claimed = await claim_batch(db, now=now, policy=policy)
    if not claimed:
        return 0
    rng = rng or random.Random()
    # Group commit: each result is recorded as soon as it is known, together with whatever else came back while
    # the last write was under way (one transaction per message would double the cost on PostgreSQL).
    ready: asyncio.Queue[Outcome | Exception] = asyncio.Queue()

    async def one(c: Claimed) -> None:
        try:
            ready.put_nowait(await deliver(db, notifier, clock, c, policy, claimed_at=claimed_at))
        except Exception as exc:  # a database error re-reading the claim: recorded by nobody, left to the lease
            ready.put_nowait(exc)

    sending = [asyncio.create_task(one(c)) for c in claimed]
    error: Exception | None = None
    remaining = len(claimed)
    try:
        while remaining:
            batch = [await ready.get()]
            while not ready.empty():
                batch.append(ready.get_nowait())
            remaining -= len(batch)
            error = error or next((e for e in batch if isinstance(e, Exception)), None)
            outcomes = [o for o in batch if isinstance(o, Outcome)]
            if outcomes:
                until = claimed_at + policy.held_for.total_seconds()
                await record_durably(db, outcomes, clock=clock, policy=policy, rng=rng, until=until)
    finally:
        # A recording that failed (the database out of reach) leaves the rest under their lease.
        await asyncio.gather(*sending, return_exceptions=True)
    if error is not None:
        raise error
    return len(claimed)


async def send_immediate(
    db: Database, notifier: Notifier, clock: Clock, message_id: int, secret: dict[str, Any]
) -> None:
    """Send one immediate-lane message now, adding `secret` (never stored) to its personalisation. It was queued
    already claimed by this process (hub.store.outbox.queue_message), and this is its only sender.

    A code that fails to go is not retried: it would be dead before a retry landed, and the patient can ask
    for a new one. The failure is recorded for staff, and audited. Its write changes only this message's row, so on
    PostgreSQL it waits for no other patient's sign-in (see hub.db.postgres).
    """
    claimed = await db.fetch_one(
        "SELECT id, kind, channel, recipient, template_id, personalisation FROM outbox_messages"
        " WHERE id = ? AND status = ? AND lane = ?",
        (message_id, MessageStatus.SENDING, Lane.IMMEDIATE),
    )
    if claimed is None:  # expired by the worker meanwhile
        return
    message = OutgoingMessage(
        reference=str(claimed["id"]),
        kind=claimed["kind"],
        channel=claimed["channel"],
        recipient=claimed["recipient"],
        template_id=claimed["template_id"],
        personalisation={**json.loads(claimed["personalisation"]), **secret},
    )
    try:
        notify_id = await notifier.send(message)
    except NotifyError as exc:
        log.warning("immediate message %s failed: %s", message_id, exc.status or type(exc).__name__)
        if hub_refused(exc.status):
            log.error("Notify refused the hub's API key or clock: security codes cannot be sent")
        error = f"notify {exc.status or 'error'}"
        async with db.write(keys=()) as tx:
            if await tx.execute(
                "UPDATE outbox_messages SET status = ?, error = ?, attempts = attempts + 1 WHERE id = ? AND status = ?",
                (MessageStatus.FAILED, error, message_id, MessageStatus.SENDING),
            ):
                detail = f"{claimed['channel']} {error}"
                await audit_message(tx, clock.now(), AuditAction.NOTIFICATION_FAILED, message_id, detail, actor=ACTOR)
        return
    async with db.write(keys=()) as tx:
        await tx.execute(
            "UPDATE outbox_messages SET status = ?, notify_id = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            (MessageStatus.SENT, notify_id, to_db(clock.now()), message_id),
        )


async def send_decoy(db: Database, notifier: Notifier, clock: Clock, message_id: int) -> None:
    """The background work of a sign-in whose details matched nobody, shaped as send_immediate's so that the two
    cost the same: the decoy row read (queued claimed, its request counted in the per-minute limit, as a code's
    is), one request to Notify that sends nothing (a look-up of the decoy's reference, which nothing was ever sent
    with), then the row removed. A decoy the web process died holding is marked expired by the worker, like a
    code."""
    claimed = await db.fetch_one(
        "SELECT id, kind, channel, recipient, template_id, personalisation FROM outbox_messages"
        " WHERE id = ? AND status = ? AND lane = ? AND patient_id IS NULL AND recipient = ''",
        (message_id, MessageStatus.SENDING, Lane.IMMEDIATE),
    )
    if claimed is None:
        return
    try:
        await notifier.find(str(claimed["id"]))
    except NotifyError as exc:
        log.warning("decoy %s: look-up failed: %s", message_id, exc.status or type(exc).__name__)
    async with db.write(keys=()) as tx:
        await tx.execute(
            "DELETE FROM outbox_messages WHERE id = ? AND status = ? AND patient_id IS NULL AND recipient = ''",
            (message_id, MessageStatus.SENDING),
        )
