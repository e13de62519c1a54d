"""Sign-in attempts at the store: codes issued under limits and kept only as hashes, consumed once, and the
verification code step for records that share a contact and a date of birth."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from hub.rules.codes import CodePolicy, hash_code
from hub.rules.contacts import Contact
from hub.store.sessions import session_id
from hub.store.signin import (
    CodeResult,
    Issued,
    Limits,
    Templates,
    awaiting_verification_code,
    challenge_id,
    choose_record_by_verification_code,
    consume_code,
    create_code_challenge,
    reissue_code_challenge,
)
from tests.conftest import SECRET
from tests.harness import Harness

pytestmark = pytest.mark.anyio
LIMITS = Limits(codes_per_contact=3, codes_per_client=10, guesses_per_client=20)
POLICY = CodePolicy(lifetime=timedelta(seconds=150), max_guesses=5)
MARGARET = Contact("mobile", "+447700900001")
TWINS = Contact("mobile", "+447700900003")


async def _issue(
    hub: Harness, contact: Contact = MARGARET, born: date = date(1948, 3, 14), *, client: str = "client-1"
) -> Issued:
    return await create_code_challenge(
        hub.db,
        secret=SECRET,
        contact=contact,
        date_of_birth=born,
        link_patient_id=None,
        client_key=client,
        limits=LIMITS,
        templates=Templates(sms="sms-template", email="email-template"),
        now=hub.clock.now(),
    )


async def _consume(hub: Harness, issued: Issued, code: str | None = None, *, client: str = "client-1") -> CodeResult:
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
    issued = await _issue(hub)
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
    issued = await _issue(hub, born=date(1950, 1, 1))
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
    assert (await _consume(hub, issued)).outcome == "wrong"  # even with its own code


async def test_a_right_code_signs_in_once_and_a_second_use_is_gone(hub: Harness) -> None:
    patient = await hub.create_patient()
    issued = await _issue(hub)
    result = await _consume(hub, issued)
    assert (result.outcome, result.patient_id) == ("signed_in", patient)
    [session] = await hub.db.fetch_all("SELECT id, patient_id FROM sessions")
    assert session == {"id": session_id(SECRET, result.session_token), "patient_id": patient}
    assert (await _consume(hub, issued)).outcome == "gone"


async def test_two_submissions_of_one_code_at_once_make_one_session(hub: Harness) -> None:
    await hub.create_patient()
    issued = await _issue(hub)
    results = await asyncio.gather(*(_consume(hub, issued) for _ in range(4)))
    assert sorted(r.outcome for r in results) == ["gone", "gone", "gone", "signed_in"]
    assert len(await hub.db.fetch_all("SELECT id FROM sessions")) == 1


async def test_wrong_guesses_lock_the_code_and_late_codes_expire(hub: Harness) -> None:
    await hub.create_patient()
    issued = await _issue(hub)
    assert [(await _consume(hub, issued, _wrong(issued))).outcome for _ in range(6)] == ["wrong"] * 5 + ["locked"]
    assert (await _consume(hub, issued)).outcome == "locked"  # the right code, too late
    late = await _issue(hub)
    hub.clock.advance(seconds=150)
    assert (await _consume(hub, late)).outcome == "expired"


async def test_codes_per_contact_and_guesses_per_client_are_limited(hub: Harness) -> None:
    await hub.create_patient()
    issued = [await _issue(hub, client=f"client-{n}") for n in range(4)]
    assert [i.token is not None for i in issued] == [True, True, True, False]
    assert len(await hub.db.fetch_all("SELECT id FROM outbox_messages")) == 3
    hub.clock.advance(hours=1)
    fresh = await _issue(hub)
    assert fresh.token is not None
    for _ in range(LIMITS.guesses_per_client):
        await _consume(hub, fresh, _wrong(fresh), client="guesser")
    assert (await _consume(hub, fresh, client="guesser")).outcome == "too_many"
    assert (await _consume(hub, fresh)).outcome == "locked"  # the code itself is spent by then


async def test_a_new_code_replaces_the_old_one(hub: Harness) -> None:
    await hub.create_patient()
    old = await _issue(hub)
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
    assert (await _consume(hub, old)).outcome == "gone"
    assert (await _consume(hub, new)).outcome == "signed_in"
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
    issued = await asyncio.gather(*(_issue(hub, client=f"client-{n}") for n in range(8)))
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
    old = await _issue(hub)
    renewed = [r for r in await asyncio.gather(*(_reissue(hub, old) for _ in range(3))) if r is not None]
    assert len(renewed) == 1 and renewed[0].token
    live = await hub.db.fetch_all("SELECT id FROM code_challenges WHERE superseded_at IS NULL")
    assert [r["id"] for r in live] == [challenge_id(SECRET, str(renewed[0].token))]


async def test_a_new_code_refused_by_a_limit_leaves_the_old_code_working(hub: Harness) -> None:
    await hub.create_patient()
    first = [await _issue(hub, client=f"client-{n}") for n in range(LIMITS.codes_per_contact)]
    refused = await _reissue(hub, first[0])
    assert refused is not None and refused.token is None
    assert (await _consume(hub, first[0])).outcome == "signed_in"


async def test_twins_choose_their_record_with_the_verification_code(hub: Harness) -> None:
    await hub.create_patient(mobile=TWINS.value, dob="2019-06-21", given_name="Amir", verification_code="AA3H9T")
    layla = await hub.create_patient(
        mobile=TWINS.value, dob="2019-06-21", given_name="Layla", verification_code="LA6R2V"
    )
    issued = await _issue(hub, TWINS, date(2019, 6, 21))
    assert issued.token is not None and len(issued.message_ids) == 1  # one text to the shared mobile
    assert (await _consume(hub, issued)).outcome == "choose_record"
    assert await awaiting_verification_code(hub.db, secret=SECRET, token=issued.token, now=hub.clock.now())

    async def choose(code: str) -> CodeResult:
        assert issued.token is not None
        return await choose_record_by_verification_code(
            hub.db, secret=SECRET, token=issued.token, verification_code=code, now=hub.clock.now()
        )

    assert (await choose("XX0000")).outcome == "wrong"
    result = await choose(" la6r 2v ")
    assert (result.outcome, result.patient_id) == ("signed_in", layla)
    assert not await awaiting_verification_code(hub.db, secret=SECRET, token=issued.token, now=hub.clock.now())
    assert (await choose("LA6R2V")).outcome == "gone"


async def test_the_verification_code_step_closes_after_five_wrong_codes_or_ten_minutes(hub: Harness) -> None:
    for n in (1, 2):
        await hub.create_patient(mobile=TWINS.value, dob="2019-06-21", verification_code=f"TWIN0{n}")
    first, second = await _issue(hub, TWINS, date(2019, 6, 21)), await _issue(hub, TWINS, date(2019, 6, 21))
    for issued in (first, second):
        assert (await _consume(hub, issued)).outcome == "choose_record"
    assert first.token is not None and second.token is not None
    outcomes = [
        (
            await choose_record_by_verification_code(
                hub.db, secret=SECRET, token=first.token, verification_code="NOPE", now=hub.clock.now()
            )
        ).outcome
        for _ in range(6)
    ]
    assert outcomes == ["wrong"] * 4 + ["locked", "gone"]
    hub.clock.advance(minutes=10)
    assert not await awaiting_verification_code(hub.db, secret=SECRET, token=second.token, now=hub.clock.now())
    late = await choose_record_by_verification_code(
        hub.db, secret=SECRET, token=second.token, verification_code="TWIN01", now=hub.clock.now()
    )
    assert late.outcome == "gone"
