"""Sign-in attempts at the store: codes issued under limits and kept only as hashes, consumed once (the
verification code step for records that share a contact and a date of birth: test_verification_codes.py)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from hub.clock import to_db
from hub.db.postgres import key_lock
from hub.rules.codes import CodePolicy, hash_code
from hub.rules.contacts import Contact
from hub.store.sessions import session_id
from hub.store.signin import (
    CodeResult,
    Issued,
    Limits,
    Templates,
    challenge_id,
    consume_code,
    create_code_challenge,
    identity_key,
    reissue_code_challenge,
)
from tests.conftest import SECRET
from tests.harness import Harness

pytestmark = pytest.mark.anyio
LIMITS = Limits(codes_per_contact=3, codes_per_client=10, guesses_per_client=20)
POLICY = CodePolicy(lifetime=timedelta(seconds=150), max_guesses=5)
MARGARET = Contact("mobile", "+447700900001")
TWINS = Contact("mobile", "+447700900003")


async def issue(
    hub: Harness,
    contact: Contact = MARGARET,
    born: date = date(1948, 3, 14),
    *,
    client: str = "client-1",
    limits: Limits = LIMITS,
) -> Issued:
    return await create_code_challenge(
        hub.db,
        secret=SECRET,
        contact=contact,
        date_of_birth=born,
        link_patient_id=None,
        client_key=client,
        limits=limits,
        templates=Templates(sms="sms-template", email="email-template"),
        now=hub.clock.now(),
    )


async def consume(hub: Harness, issued: Issued, code: str | None = None, *, client: str = "client-1") -> CodeResult:
    assert issued.token is not None
    return await consume_code(
        hub.db,
        secret=SECRET,
        token=issued.token,
        code=issued.code if code is None else code,
        client_key=client,
        policy=POLICY,
        limits=LIMITS,
        now=hub.clock.now(),
    )


def _wrong(issued: Issued) -> str:
    return f"{(int(issued.code) + 1) % 1_000_000:06d}"


async def test_a_code_is_sent_to_the_patient_and_stored_only_as_a_keyed_hash(hub: Harness) -> None:
    patient = await hub.create_patient()
    issued = await issue(hub)
    assert issued.token and len(issued.code) == 6 and len(issued.message_ids) == 1
    [challenge] = await hub.db.fetch_all("SELECT * FROM code_challenges")
    assert challenge["id"] == challenge_id(SECRET, issued.token) != issued.token
    assert challenge["code_hash"] == hash_code(SECRET, challenge["id"], issued.code)
    assert issued.code not in str(challenge) and "+447700900001" not in str(challenge)
    [message] = await hub.db.fetch_all(
        "SELECT kind, lane, channel, recipient, template_id, patient_id FROM outbox_messages"
    )
    assert message == {
        "kind": "security_code",
        "lane": "immediate",
        "channel": "sms",
        "recipient": "+447700900001",
        "template_id": "sms-template",
        "patient_id": patient,
    }


async def test_no_match_does_the_same_work_but_sends_nothing_and_can_never_sign_in(hub: Harness) -> None:
    await hub.create_patient()
    issued = await issue(hub, born=date(1950, 1, 1))
    assert issued.token and len(issued.code) == 6 and issued.message_ids == []
    assert len(await hub.db.fetch_all("SELECT id FROM code_challenges")) == 1
    # A decoy security code row, as a match's, but with no patient and no recipient: for the background work.
    [decoy] = issued.decoy_ids
    row = await hub.db.fetch_one(
        "SELECT kind, lane, channel, recipient, template_id, patient_id, status FROM outbox_messages WHERE id = ?",
        (decoy,),
    )
    assert row == {
        "kind": "security_code",
        "lane": "immediate",
        "channel": "sms",
        "recipient": "",
        "template_id": "sms-template",
        "patient_id": None,
        "status": "sending",  # claimed by the process that answered, as a code is
    }
    audit = await hub.db.fetch_all("SELECT action, record_type, record_id, detail FROM audit_events")
    cid = challenge_id(SECRET, issued.token)
    assert audit == [
        {"action": "sign_in_unmatched", "record_type": "sign_in", "record_id": cid, "detail": "no code sent"}
    ]
    assert (await consume(hub, issued)).outcome == "wrong"  # even with its own code


async def test_a_right_code_signs_in_once_and_a_second_use_is_gone(hub: Harness) -> None:
    patient = await hub.create_patient()
    issued = await issue(hub)
    result = await consume(hub, issued)
    assert (result.outcome, result.patient_id) == ("signed_in", patient)
    [session] = await hub.db.fetch_all("SELECT id, patient_id FROM sessions")
    assert session == {"id": session_id(SECRET, result.session_token), "patient_id": patient}
    assert (await consume(hub, issued)).outcome == "gone"


async def test_two_submissions_of_one_code_at_once_make_one_session(hub: Harness) -> None:
    await hub.create_patient()
    issued = await issue(hub)
    results = await asyncio.gather(*(consume(hub, issued) for _ in range(4)))
    assert sorted(r.outcome for r in results) == ["gone", "gone", "gone", "signed_in"]
    assert len(await hub.db.fetch_all("SELECT id FROM sessions")) == 1


async def test_wrong_guesses_lock_the_code_and_late_codes_expire(hub: Harness) -> None:
    await hub.create_patient()
    issued = await issue(hub)
    assert [(await consume(hub, issued, _wrong(issued))).outcome for _ in range(6)] == ["wrong"] * 5 + ["locked"]
    assert (await consume(hub, issued)).outcome == "locked"  # the right code, too late
    late = await issue(hub)
    hub.clock.advance(seconds=150)
    assert (await consume(hub, late)).outcome == "expired"


async def test_codes_per_contact_and_guesses_per_client_are_limited(hub: Harness) -> None:
    await hub.create_patient()
    issued = [await issue(hub, client=f"client-{n}") for n in range(4)]
    assert [i.token is not None for i in issued] == [True, True, True, False]
    assert len(await hub.db.fetch_all("SELECT id FROM outbox_messages")) == 3
    hub.clock.advance(hours=1)
    fresh = await issue(hub)
    assert fresh.token is not None
    for _ in range(LIMITS.guesses_per_client):
        await consume(hub, fresh, _wrong(fresh), client="guesser")
    assert (await consume(hub, fresh, client="guesser")).outcome == "too_many"
    assert (await consume(hub, fresh)).outcome == "locked"  # the code itself is spent by then


async def test_a_new_code_replaces_the_old_one(hub: Harness) -> None:
    await hub.create_patient()
    old = await issue(hub)
    assert old.token is not None
    new = await reissue_code_challenge(
        hub.db,
        secret=SECRET,
        token=old.token,
        client_key="client-1",
        limits=LIMITS,
        templates=Templates(sms="t", email="t"),
        now=hub.clock.now(),
    )
    assert new is not None and new.token and new.code and len(new.message_ids) == 1
    assert (await consume(hub, old)).outcome == "gone"
    assert (await consume(hub, new)).outcome == "signed_in"
    again = await reissue_code_challenge(
        hub.db,
        secret=SECRET,
        token=old.token,
        client_key="c",
        limits=LIMITS,
        templates=Templates("t", "t"),
        now=hub.clock.now(),
    )
    assert again is None


async def test_sign_ins_at_once_for_the_same_details_stay_within_the_limits(hub: Harness) -> None:
    """On PostgreSQL sign-ins do not wait for one lock of the whole hub: each counter they read is locked by its
    key, so those sharing one still count one at a time."""
    await hub.create_patient()
    issued = await asyncio.gather(*(issue(hub, client=f"client-{n}") for n in range(8)))
    assert sum(i.token is not None for i in issued) == LIMITS.codes_per_contact
    assert len(await hub.db.fetch_all("SELECT id FROM outbox_messages WHERE patient_id IS NOT NULL")) == 3


async def _reissue(hub: Harness, issued: Issued, *, client: str = "client-1") -> Issued | None:
    assert issued.token is not None
    return await reissue_code_challenge(
        hub.db,
        secret=SECRET,
        token=issued.token,
        client_key=client,
        limits=LIMITS,
        templates=Templates(sms="t", email="t"),
        now=hub.clock.now(),
    )


async def test_two_taps_of_send_a_new_code_at_once_renew_the_attempt_once(hub: Harness) -> None:
    await hub.create_patient()
    old = await issue(hub)
    renewed = [r for r in await asyncio.gather(*(_reissue(hub, old) for _ in range(3))) if r is not None]
    assert len(renewed) == 1 and renewed[0].token
    live = await hub.db.fetch_all("SELECT id FROM code_challenges WHERE superseded_at IS NULL")
    assert [r["id"] for r in live] == [challenge_id(SECRET, str(renewed[0].token))]


async def test_a_new_code_refused_by_a_limit_leaves_the_old_code_working(hub: Harness) -> None:
    await hub.create_patient()
    first = [await issue(hub, client=f"client-{n}") for n in range(LIMITS.codes_per_contact)]
    refused = await _reissue(hub, first[0])
    assert refused is not None and refused.token is None
    assert (await consume(hub, first[0])).outcome == "signed_in"


def _stranger(n: int) -> Contact:
    """Details that match nobody: the same work as a match, no patient needed."""
    return Contact("mobile", f"+4477009{n:05d}")


async def test_sign_ins_at_once_from_one_address_stay_within_its_limits(hub: Harness) -> None:
    """The address's counters are reserved in transactions of their own: still exact under concurrency, and an
    attempt another limit refuses, or a right code, does not count against the address."""
    limits = Limits(codes_per_contact=3, codes_per_client=5, guesses_per_client=5)

    async def start(n: int, client: str) -> Issued:
        return await issue(hub, _stranger(n), date(1950, 1, 1), client=client, limits=limits)

    async def guess(attempt: Issued, code: str) -> str:
        assert attempt.token is not None
        result = await consume_code(
            hub.db,
            secret=SECRET,
            token=attempt.token,
            code=code,
            client_key="guesser",
            policy=POLICY,
            limits=limits,
            now=hub.clock.now(),
        )
        return result.outcome

    async def counted(key: str) -> int:
        return len(await hub.db.fetch_all("SELECT id FROM rate_events WHERE key = ?", (key,)))

    started = await asyncio.gather(*(start(n, "shared") for n in range(8)))
    assert sum(s.token is not None for s in started) == 5
    assert await counted("code:shared") == 5
    attempts = await asyncio.gather(*(start(n, f"client-{n}") for n in range(8)))
    outcomes = await asyncio.gather(*(guess(a, _wrong(a)) for a in attempts))
    assert sorted(outcomes) == ["too_many"] * 3 + ["wrong"] * 5
    assert await counted("guess:guesser") == 5

    hub.clock.advance(hours=1)
    await hub.create_patient()
    right = await issue(hub, client="guesser")
    assert (await consume(hub, right, client="guesser")).outcome == "signed_in"
    gone = await consume(hub, right, client="guesser")  # no attempt left to guess at: not a guess either
    assert gone.outcome == "gone"
    recent = await hub.db.fetch_all(
        "SELECT key FROM rate_events WHERE key LIKE 'guess:%' AND at > ?",
        (to_db(hub.clock.now() - timedelta(minutes=1)),),
    )
    assert recent == []
    # Six attempts with the same details: the three their own limit allows count against the address, the rest not.
    assert [(await start(100, "one-person")).token is not None for _ in range(6)] == [True] * 3 + [False] * 3
    assert await counted("code:one-person") == 3


async def test_a_sign_in_waiting_for_its_own_counters_holds_up_nobody_else_at_its_address(hub: Harness) -> None:
    """Thousands of patients can share an address (a carrier's network): on PostgreSQL a sign-in holds the address's
    counter only while reserving its code, not while it waits for, and works under, its own details' locks."""
    if hub.db.dialect != "postgresql":
        return  # SQLite has one writer at a time: nothing runs beside anything
    address = key_lock("code:shared")
    # An attempt whose own counter sorts after the address's: before, it took the address's lock first (the
    # keys are locked in sorted order) and kept it while it waited for its own.
    born = next(
        d
        for d in (date(1950, 1, 1) + timedelta(days=n) for n in range(400))
        if key_lock("code:" + identity_key(SECRET, _stranger(1), d)) > address
    )
    own = "code:" + identity_key(SECRET, _stranger(1), born)
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with hub.db.write(keys=[own]):
            inside.set()
            await release.wait()

    async def start(contact: Contact, dob: date) -> Issued:
        return await issue(hub, contact, dob, client="shared")

    holding = asyncio.create_task(hold())
    try:
        await inside.wait()
        waiting = asyncio.create_task(start(_stranger(1), born))
        await asyncio.sleep(0.3)
        other = await asyncio.wait_for(start(_stranger(2), date(1960, 5, 5)), timeout=5)
        assert other.token is not None
        assert not waiting.done()
    finally:
        release.set()
    first = await asyncio.wait_for(waiting, timeout=10)
    await holding
    assert first.token is not None
