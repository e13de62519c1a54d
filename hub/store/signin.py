"""Sign-in attempts: issuing codes, consuming them, and their rate limits (the twins' verification code step that
may follow a right code: hub/store/verification_codes.py).

Every path does the same work whether or not the details matched a record, so the answer and its timing
say nothing about who is on our books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database, Transaction
from hub.rules.codes import CodePolicy, code_state, hash_code, keyed_hash, new_code, new_token, valid_from
from hub.rules.contacts import Contact
from hub.store.audit import record_audit
from hub.store.outbox import queue_message
from hub.store.patients import find_patients_by_contact
from hub.store.rate_limits import count_recent, note, reserve, take_back
from hub.store.sessions import create_session
from hub.vocabulary import ActorType, AuditAction, Channel, Lane, MessageKind, RecordType

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Limits:
    codes_per_contact: int  # codes sent to one mobile or email address: the message cost, counted on sends only
    codes_per_client: int
    guesses_per_client: int
    codes_per_identity: int = 5  # sign-in attempts for one (contact, date of birth), matched or not


@dataclass
class Issued:
    token: str | None = None  # the browser's handle on the attempt; None when a limit refused it
    code: str = ""
    message_ids: list[int] = field(default_factory=list)
    decoy_ids: list[int] = field(default_factory=list)  # for details that matched nobody: see _decoy


@dataclass(frozen=True)
class Templates:
    sms: str
    email: str


def challenge_id(secret: str, token: str) -> str:
    return keyed_hash(secret, "challenge", token)


def identity_key(secret: str, contact: Contact, date_of_birth: date) -> str:
    """What the sign-in limit counts against: the contact with the date of birth. Someone who knows a patient's
    mobile but not their date of birth uses up only their own guesses, never the patient's."""
    return keyed_hash(secret, "identity", f"{contact.value}|{date_of_birth.isoformat()}")


def _recipient(patient: dict[str, object]) -> tuple[Channel, str]:
    # By text to the mobile on record; by email only when there is no mobile (see README, security).
    if patient["mobile"]:
        return Channel.SMS, str(patient["mobile"])
    return Channel.EMAIL, str(patient["email"] or "")


async def _issue(
    tx: Transaction,
    *,
    secret: str,
    contact_key: str,
    client_key: str,
    candidates: list[dict[str, object]],
    link_patient_id: int | None,
    limits: Limits,
    templates: Templates,
    now: datetime,
    reserved: int,
) -> Issued:
    """`contact_key` is the identity key (contact and date of birth). The per-contact cap counts codes sent to
    each recipient; a request that matched nobody counts one unsent attempt instead, so the same statements run
    whether or not anything matched, and a wrong date of birth never uses up the patient's cap. `reserved`: the
    attempt already counted against the address (`_reserve_code`), taken back when another limit refuses it."""
    recipients = list(dict.fromkeys(r for _, r in (_recipient(p) for p in candidates) if r))
    sent_keys = [f"sent:{keyed_hash(secret, 'contact', r)}" for r in recipients] or [f"unsent:{contact_key}"]
    identity = "code:" + contact_key
    keys = [identity, *sent_keys]
    # Each counter read and then added to is locked by its key: sign-ins sharing no counter run side by side.
    await tx.hold_keys(keys)
    counted = await count_recent(tx, keys, now - _HOUR)
    if counted[identity] >= limits.codes_per_identity or any(
        counted[key] >= limits.codes_per_contact for key in sent_keys
    ):
        await take_back(tx, reserved)
        return Issued()
    await note(tx, keys, now)
    token, code = new_token(), new_code()
    cid = challenge_id(secret, token)
    await tx.execute(
        "INSERT INTO code_challenges (id, contact_key, link_patient_id, code_hash, issued_at) VALUES (?, ?, ?, ?, ?)",
        (cid, contact_key, link_patient_id, hash_code(secret, cid, code), to_db(now)),
    )
    issued = Issued(token=token, code=code)
    sent_to: set[str] = set()
    for patient in candidates:
        await tx.execute(
            "INSERT INTO code_challenge_candidates (challenge_id, patient_id) VALUES (?, ?)",
            (cid, patient["id"]),
        )
        channel, recipient = _recipient(patient)
        if not recipient or recipient in sent_to:
            continue
        sent_to.add(str(recipient))
        message_id = await queue_message(
            tx,
            at=now,
            kind=MessageKind.SECURITY_CODE,
            channel=channel,
            recipient=str(recipient),
            template_id=templates.sms if channel == Channel.SMS else templates.email,
            personalisation={},
            patient_id=int(str(patient["id"])),
            lane=Lane.IMMEDIATE,
        )
        issued.message_ids.append(message_id)
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id="sign-in",
            action=AuditAction.CODE_ISSUED,
            record_type=RecordType.PATIENT,
            record_id=str(patient["id"]),
            detail=f"message {message_id}",
        )
    if not sent_to:
        issued.decoy_ids.append(await _decoy(tx, cid=cid, templates=templates, now=now))
    return issued


async def _decoy(tx: Transaction, *, cid: str, templates: Templates, now: datetime) -> int:
    """Details that matched nobody (or a record with nowhere to send a code) do a code's work all the same (F8 of
    the security assessment): a security code row in the outbox and an audit entry, written here, and in the
    background after the answer a claim of the row, a request to Notify and the row's removal (see
    hub.notify.sender.send_decoy). The row has no patient and no recipient: nothing is sent, no one sees it, and it
    counts against no number's caps."""
    decoy = await queue_message(
        tx,
        at=now,
        kind=MessageKind.SECURITY_CODE,
        channel=Channel.SMS,
        recipient="",
        template_id=templates.sms,
        personalisation={},
        patient_id=None,
        lane=Lane.IMMEDIATE,
    )
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM,
        actor_id="sign-in",
        action=AuditAction.SIGN_IN_UNMATCHED,
        record_type=RecordType.SIGN_IN,
        record_id=cid,
        detail="no code sent",
    )
    return decoy


async def create_code_challenge(
    db: Database,
    *,
    secret: str,
    contact: Contact,
    date_of_birth: date,
    link_patient_id: int | None,
    client_key: str,
    limits: Limits,
    templates: Templates,
    now: datetime,
    current_token: str = "",
    policy: CodePolicy | None = None,
) -> Issued:
    """A new code; or, when this browser's attempt (current_token) is for the same details and its code is still
    live, that attempt again: a second tap of Continue must not spend a code or make the first one wrong."""
    contact_key = identity_key(secret, contact, date_of_birth)
    reserved = await _reserve_code(db, client_key, limits=limits, now=now)
    if reserved is None:
        return Issued()
    async with db.write(keys=()) as tx:  # _issue locks the counters it reads
        candidates = await find_patients_by_contact(tx, contact, date_of_birth, only_patient_id=link_patient_id)
        if (
            current_token
            and policy is not None
            and await _is_live_repeat(
                tx,
                challenge_id(secret, current_token),
                contact_key=contact_key,
                link_patient_id=link_patient_id,
                candidate_ids={int(str(c["id"])) for c in candidates},
                now=now,
                policy=policy,
            )
        ):
            await take_back(tx, reserved)  # the same attempt again spends nothing
            return Issued(token=current_token)
        return await _issue(
            tx,
            secret=secret,
            contact_key=contact_key,
            client_key=client_key,
            candidates=candidates,
            link_patient_id=link_patient_id,
            limits=limits,
            templates=templates,
            now=now,
            reserved=reserved,
        )


async def _reserve_code(db: Database, client_key: str, *, limits: Limits, now: datetime) -> int | None:
    """The code counted against the address first, in a transaction of its own: every patient behind one address
    (a carrier's, a hospital's) shares that counter, and its lock is then held for two statements, not for the
    whole sign-in. None when the address has had its codes for the hour."""
    return await reserve(db, "code:" + client_key, limit=limits.codes_per_client, since=now - _HOUR, now=now)


async def _is_live_repeat(
    tx: Transaction,
    cid: str,
    *,
    contact_key: str,
    link_patient_id: int | None,
    candidate_ids: set[int],
    now: datetime,
    policy: CodePolicy,
) -> bool:
    row = await tx.fetch_one(
        "SELECT contact_key, link_patient_id, issued_at, failed_guesses FROM code_challenges"
        " WHERE id = ? AND consumed_at IS NULL AND superseded_at IS NULL",
        (cid,),
    )
    if row is None or row["contact_key"] != contact_key or row["link_patient_id"] != link_patient_id:
        return False
    state = code_state(
        issued_at=from_db(row["issued_at"]), now=now, failed_guesses=int(row["failed_guesses"]), policy=policy
    )
    if state != "live":
        return False
    earlier = await tx.fetch_all("SELECT patient_id FROM code_challenge_candidates WHERE challenge_id = ?", (cid,))
    return {int(r["patient_id"]) for r in earlier} == candidate_ids


async def reissue_code_challenge(
    db: Database,
    *,
    secret: str,
    token: str,
    client_key: str,
    limits: Limits,
    templates: Templates,
    now: datetime,
) -> Issued | None:
    """'Send a new code': a fresh attempt for the same details; the old code dies. None: no attempt to renew."""
    cid = challenge_id(secret, token)
    reserved = await _reserve_code(db, client_key, limits=limits, now=now)
    if reserved is None:
        live = await db.fetch_one(
            "SELECT 1 AS live FROM code_challenges WHERE id = ? AND consumed_at IS NULL AND superseded_at IS NULL",
            (cid,),
        )
        return Issued() if live else None
    async with db.write(keys=()) as tx:  # the attempt's row is locked by its UPDATE, the counters by _issue
        # Superseded first: of two taps of "send a new code", one renews the attempt and the other finds it gone.
        old = await tx.fetch_one(
            "UPDATE code_challenges SET superseded_at = ? WHERE id = ? AND consumed_at IS NULL"
            " AND superseded_at IS NULL RETURNING contact_key, link_patient_id",
            (to_db(now), cid),
        )
        if old is None:
            await take_back(tx, reserved)
            return None
        candidates = await tx.fetch_all(
            "SELECT p.id, p.mobile, p.email FROM code_challenge_candidates c JOIN patients p ON p.id = c.patient_id"
            " WHERE c.challenge_id = ? ORDER BY p.id",
            (cid,),
        )
        issued = await _issue(
            tx,
            secret=secret,
            contact_key=old["contact_key"],
            client_key=client_key,
            candidates=candidates,
            link_patient_id=old["link_patient_id"],
            limits=limits,
            templates=templates,
            now=now,
            reserved=reserved,
        )
        if issued.token is None:  # refused by a limit: the old code lives on
            await tx.execute("UPDATE code_challenges SET superseded_at = NULL WHERE id = ?", (cid,))
        return issued


@dataclass(frozen=True)
class CodeResult:
    outcome: str  # signed_in | choose_record | wrong | expired | locked | too_many | gone
    session_token: str = ""
    patient_id: int | None = None
    tries_left: int = 0  # after a wrong code: how many more the attempt allows (the same for a miss and a match)


async def consume_code(
    db: Database,
    *,
    secret: str,
    token: str,
    code: str,
    client_key: str,
    policy: CodePolicy,
    limits: Limits,
    now: datetime,
) -> CodeResult:
    cid = challenge_id(secret, token)
    # Every guess is counted against the address before it is checked, in a transaction of its own (see
    # _reserve_code); a right one is taken back. The attempt's row is locked by the conditional UPDATEs below.
    reserved = await reserve(db, "guess:" + client_key, limit=limits.guesses_per_client, since=now - _HOUR, now=now)
    if reserved is None:
        return CodeResult("too_many")
    async with db.write(keys=()) as tx:
        # One conditional UPDATE: of two submissions of one code, only one can see consumed_at still empty.
        won = await tx.fetch_one(
            "UPDATE code_challenges SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL AND superseded_at IS NULL"
            " AND issued_at > ? AND failed_guesses < ? AND code_hash = ?"
            " AND EXISTS (SELECT 1 FROM code_challenge_candidates WHERE challenge_id = ?) RETURNING id",
            (
                to_db(now),
                cid,
                to_db(valid_from(now, policy)),
                policy.max_guesses,
                hash_code(secret, cid, code),
                cid,
            ),
        )
        if won is None:
            wrong = await _wrong_guess(tx, cid=cid, policy=policy, now=now)
            if wrong.outcome == "gone":  # no attempt to guess at: not a guess
                await take_back(tx, reserved)
            return wrong
        await take_back(tx, reserved)
        candidates = await tx.fetch_all(
            "SELECT patient_id FROM code_challenge_candidates WHERE challenge_id = ? ORDER BY patient_id",
            (cid,),
        )
        if len(candidates) > 1:
            return CodeResult("choose_record")
        return await finish_sign_in(tx, secret=secret, cid=cid, patient_id=int(candidates[0]["patient_id"]), now=now)


async def _wrong_guess(tx: Transaction, *, cid: str, policy: CodePolicy, now: datetime) -> CodeResult:
    row = await tx.fetch_one(
        "UPDATE code_challenges SET failed_guesses = failed_guesses + 1 WHERE id = ? AND consumed_at IS NULL"
        " AND superseded_at IS NULL RETURNING issued_at, failed_guesses",
        (cid,),
    )
    if row is None:
        return CodeResult("gone")
    # The guess that used up the last try is told it was wrong; the next is told the code is locked.
    state = code_state(
        issued_at=from_db(row["issued_at"]), now=now, failed_guesses=row["failed_guesses"] - 1, policy=policy
    )
    if state != "live":
        return CodeResult(state)
    return CodeResult("wrong", tries_left=max(policy.max_guesses - int(row["failed_guesses"]), 0))


async def withdraw_pending_codes(tx: Transaction, patient_id: int) -> None:
    """Codes already sent no longer sign in to this patient: the mobile or email they went to is no longer the
    patient's (the hospital gave a new one, or merged the record into another). Someone holding the old phone
    who asked for a code with it and the date of birth is answered as a wrong code is."""
    await tx.execute("DELETE FROM code_challenge_candidates WHERE patient_id = ?", (patient_id,))


async def finish_sign_in(tx: Transaction, *, secret: str, cid: str, patient_id: int, now: datetime) -> CodeResult:
    await tx.execute("UPDATE code_challenges SET finished_at = ? WHERE id = ?", (to_db(now), cid))
    session_token = await create_session(tx, secret=secret, patient_id=patient_id, at=now)
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.PATIENT,
        actor_id=patient_id,
        action=AuditAction.SIGNED_IN,
        record_type=RecordType.PATIENT,
        record_id=patient_id,
    )
    return CodeResult("signed_in", session_token=session_token, patient_id=patient_id)
