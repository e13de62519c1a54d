"""Staff sessions: a new id at every stage, idle timeouts (short ones for a half-finished sign-in), sign-out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub.store.staff_sessions import (
    StaffSession,
    end_staff_session,
    get_staff_session,
    staff_session_id,
    start_staff_session,
)
from hub.vocabulary import StaffSessionStage
from tests.conftest import SECRET
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio
IDLE = timedelta(minutes=30)


async def _get(hub: Harness, token: str) -> StaffSession | str | None:
    return await get_staff_session(hub.db, secret=SECRET, token=token, now=hub.clock.now(), idle=IDLE)


async def test_a_session_is_kept_as_a_keyed_hash_and_a_new_stage_gets_a_new_id(hub: Harness) -> None:
    staff = await hub.create_staff_user()
    pending = await start_staff_session(
        hub.db, secret=SECRET, staff_id=staff, stage=StaffSessionStage.ENROL, at=hub.clock.now(), pending_secret="ABC"
    )
    found = await _get(hub, pending)
    assert found == StaffSession(staff_session_id(SECRET, pending), staff, StaffSessionStage.ENROL, "ABC")
    active = await start_staff_session(
        hub.db, secret=SECRET, staff_id=staff, stage=StaffSessionStage.ACTIVE, at=hub.clock.now(), replaces=pending
    )
    assert active != pending
    assert await _get(hub, pending) is None
    assert isinstance(await _get(hub, active), StaffSession)
    stored = await hub.db.fetch_all("SELECT id FROM staff_sessions")
    assert pending not in str(stored) and active not in str(stored)


async def test_an_active_session_lasts_while_used_and_ends_after_the_idle_time(hub: Harness) -> None:
    token = await start_staff_session(
        hub.db,
        secret=SECRET,
        staff_id=await hub.create_staff_user(),
        stage=StaffSessionStage.ACTIVE,
        at=hub.clock.now(),
    )
    for _ in range(3):
        hub.clock.advance(minutes=29)
        assert isinstance(await _get(hub, token), StaffSession)
    hub.clock.advance(minutes=30)
    assert await _get(hub, token) == "expired"
    assert await _get(hub, token) is None  # and it is over for good


async def test_a_half_finished_sign_in_lasts_ten_minutes_at_most(hub: Harness) -> None:
    token = await start_staff_session(
        hub.db, secret=SECRET, staff_id=await hub.create_staff_user(), stage=StaffSessionStage.TOTP, at=hub.clock.now()
    )
    hub.clock.advance(minutes=9)
    assert isinstance(await _get(hub, token), StaffSession)
    hub.clock.advance(minutes=10)
    assert await _get(hub, token) == "expired"


async def test_signing_out_ends_the_session_and_a_made_up_token_finds_nothing(hub: Harness) -> None:
    token = await start_staff_session(
        hub.db,
        secret=SECRET,
        staff_id=await hub.create_staff_user(),
        stage=StaffSessionStage.ACTIVE,
        at=hub.clock.now(),
    )
    await end_staff_session(hub.db, secret=SECRET, token=token, at=hub.clock.now())
    assert await _get(hub, token) is None
    assert await _get(hub, "made-up") is None and await _get(hub, "x" * 10_000) is None


async def test_an_agents_session_waits_for_no_patients_write(hub: Harness, backend: str) -> None:
    # Agents open pages all day: starting, touching and ending a session change that session's row only, so on
    # PostgreSQL none of them waits for a patient's write (SQLite has one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    staff, patient = await hub.create_staff_user(), await hub.create_patient()

    async def a_day_at_the_desk() -> None:
        start = start_staff_session(
            hub.db, secret=SECRET, staff_id=staff, stage=StaffSessionStage.ACTIVE, at=hub.clock.now()
        )
        token = await start
        hub.clock.advance(minutes=10)  # long enough since the last page for the session to be touched
        assert isinstance(await _get(hub, token), StaffSession)
        await end_staff_session(hub.db, secret=SECRET, token=token, at=hub.clock.now())
        assert await _get(hub, token) is None

    async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
        await asyncio.wait_for(a_day_at_the_desk(), timeout=5)
