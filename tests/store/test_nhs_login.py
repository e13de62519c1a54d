"""NHS login's attempts (state and nonce, single use, ten minutes) and its sessions, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date, timedelta

import pytest

from hub.clock import to_db
from hub.db import Transaction
from hub.store.nhs_login import (
    create_login_attempt,
    find_patient_for_nhs_login,
    remove_old_login_attempts,
    start_nhs_login_session,
    take_login_attempt,
)
from hub.store.sessions import EXPIRED_OWN_LIMIT, SessionPolicy, get_live_session
from tests.conftest import SECRET
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio

NHS = "9434765919"
POLICY = SessionPolicy(idle=timedelta(minutes=15), absolute=timedelta(hours=2))


async def test_an_attempt_works_once(hub: Harness) -> None:
    state, nonce = await create_login_attempt(
        hub.db, secret=SECRET, return_to="/appointments/3", tracking_id="t-1", now=hub.clock.now()
    )
    row = await take_login_attempt(hub.db, secret=SECRET, state=state, now=hub.clock.now())
    assert row is not None and row["nonce"] == nonce and row["return_to"] == "/appointments/3"
    assert await take_login_attempt(hub.db, secret=SECRET, state=state, now=hub.clock.now()) is None
    stored = await hub.db.fetch_all("SELECT id FROM nhs_login_attempts")
    assert state not in str(stored)  # only its keyed hash is kept


async def test_an_attempt_dies_after_ten_minutes(hub: Harness) -> None:
    state, _ = await create_login_attempt(hub.db, secret=SECRET, return_to="/", tracking_id="", now=hub.clock.now())
    later = hub.clock.now() + timedelta(minutes=10)
    assert await take_login_attempt(hub.db, secret=SECRET, state=state, now=later) is None
    assert await take_login_attempt(hub.db, secret=SECRET, state="made-up", now=hub.clock.now()) is None
    assert await remove_old_login_attempts(hub.db, now=hub.clock.now() + timedelta(days=2)) == 1


async def test_the_patient_is_matched_by_nhs_number_and_date_of_birth_only(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS, dob="1948-03-14")
    assert await find_patient_for_nhs_login(hub.db, nhs_number=NHS, born=date(1948, 3, 14)) == {"id": patient}
    assert await find_patient_for_nhs_login(hub.db, nhs_number=NHS, born=date(1948, 3, 15)) is None
    assert await find_patient_for_nhs_login(hub.db, nhs_number="9000000009", born=date(1948, 3, 14)) is None


async def test_an_excluded_patient_is_not_matched(hub: Harness) -> None:
    await hub.create_patient(nhs_number=NHS, dob="1948-03-14", nhs_app_excluded=True)
    assert await find_patient_for_nhs_login(hub.db, nhs_number=NHS, born=date(1948, 3, 14)) is None


async def test_an_nhs_login_session_ends_after_its_own_idle_limit(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS)
    token = await start_nhs_login_session(
        hub.db, secret=SECRET, patient_id=patient, idle=timedelta(minutes=10), now=hub.clock.now()
    )
    at_nine = hub.clock.now() + timedelta(minutes=9, seconds=59)
    live = await get_live_session(hub.db, secret=SECRET, token=token, now=at_nine, policy=POLICY)
    assert not isinstance(live, str) and live is not None and live.idle == timedelta(minutes=10)
    at_twenty = at_nine + timedelta(minutes=10)
    assert await get_live_session(hub.db, secret=SECRET, token=token, now=at_twenty, policy=POLICY) == (
        EXPIRED_OWN_LIMIT
    )
    audit = await hub.db.fetch_all("SELECT action, detail FROM audit_events WHERE actor_id = ?", (str(patient),))
    assert audit == [{"action": "signed_in", "detail": "nhs_login"}]


async def test_two_callbacks_with_one_state_at_once_use_it_once(hub: Harness) -> None:
    # The first callback's use of the state is made, not yet committed, when the second arrives: once it commits,
    # the second finds the state used.
    state, _ = await create_login_attempt(hub.db, secret=SECRET, return_to="/", tracking_id="", now=hub.clock.now())

    def first_callback(tx: Transaction) -> Awaitable[int]:
        return tx.execute("UPDATE nhs_login_attempts SET used_at = ? WHERE used_at IS NULL", (to_db(hub.clock.now()),))

    async with held_write(hub.db, keys=(), doing=first_callback):
        second = asyncio.create_task(take_login_attempt(hub.db, secret=SECRET, state=state, now=hub.clock.now()))
        await asyncio.sleep(0.3)
        assert not second.done()  # waiting for the first's row
    assert await asyncio.wait_for(second, timeout=10) is None


async def test_an_nhs_login_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    # The NHS App's patients sign in in crowds too: the attempt, its use and the new session lock that patient
    # at most, so on PostgreSQL another patient's write open meanwhile holds none of it up.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient, someone_else = await hub.create_patient(nhs_number=NHS), await hub.create_patient()

    async def sign_in() -> str:
        now = hub.clock.now()
        state, _ = await create_login_attempt(hub.db, secret=SECRET, return_to="/", tracking_id="", now=now)
        assert await take_login_attempt(hub.db, secret=SECRET, state=state, now=now) is not None
        idle = timedelta(minutes=10)
        return await start_nhs_login_session(hub.db, secret=SECRET, patient_id=patient, idle=idle, now=now)

    async with held_write(hub.db, patient=someone_else, doing=touch_patient(someone_else)):
        token = await asyncio.wait_for(sign_in(), timeout=5)
    assert await get_live_session(hub.db, secret=SECRET, token=token, now=hub.clock.now(), policy=POLICY) is not None
