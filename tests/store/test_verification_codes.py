"""The verification code step: records sharing a mobile and a date of birth (twins) both match a sign-in, and
after the right security code the code on their letters says which record is theirs."""

from __future__ import annotations

from datetime import date

import pytest

from hub.store.signin import CodeResult
from hub.store.verification_codes import awaiting_verification_code, choose_record_by_verification_code
from tests.conftest import SECRET
from tests.harness import Harness
from tests.store.test_signin import TWINS, consume, issue

pytestmark = pytest.mark.anyio


async def test_twins_choose_their_record_with_the_verification_code(hub: Harness) -> None:
    await hub.create_patient(mobile=TWINS.value, dob="2019-06-21", given_name="Amir", verification_code="AA3H9T")
    layla = await hub.create_patient(
        mobile=TWINS.value, dob="2019-06-21", given_name="Layla", verification_code="LA6R2V"
    )
    issued = await issue(hub, TWINS, date(2019, 6, 21))
    assert issued.token is not None and len(issued.message_ids) == 1  # one text to the shared mobile
    assert (await consume(hub, issued)).outcome == "choose_record"
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
    first, second = await issue(hub, TWINS, date(2019, 6, 21)), await issue(hub, TWINS, date(2019, 6, 21))
    for issued in (first, second):
        assert (await consume(hub, issued)).outcome == "choose_record"
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
