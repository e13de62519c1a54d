"""Staff accounts at the store: set-up links, password and authenticator checks with lockout, disabling, resets."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from hub.rules.staff import LockoutPolicy
from hub.rules.staff_scope import SYSTEM
from hub.store.staff import (
    Check,
    check_password,
    check_totp,
    create_staff,
    disable_staff,
    enrol_totp,
    get_staff,
    get_staff_by_setup_token,
    list_staff,
    reset_totp,
    set_password_from_setup,
)
from hub.store.staff_sessions import get_staff_session, start_staff_session
from hub.vocabulary import StaffSessionStage
from tests.conftest import SECRET
from tests.harness import Harness

pytestmark = pytest.mark.anyio
POLICY = LockoutPolicy(attempts=3, duration=timedelta(minutes=15))
PASSWORD = "correct horse battery staple"
TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def _actions(hub: Harness) -> list[str]:
    return [r["action"] for r in await hub.db.fetch_all("SELECT action FROM audit_events ORDER BY id")]


async def test_a_set_up_link_opens_the_new_account_once_until_it_expires(hub: Harness) -> None:
    token = await create_staff(hub.db, username="Alice", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    staff = await get_staff_by_setup_token(hub.db, secret=SECRET, token=token, now=hub.clock.now())
    assert staff is not None and (staff["username"], staff["role"], staff["password_hash"]) == ("alice", "agent", None)
    [row] = await hub.db.fetch_all("SELECT setup_token_hash FROM staff_users")
    assert row["setup_token_hash"] != token
    assert await get_staff_by_setup_token(hub.db, secret="another-secret", token=token, now=hub.clock.now()) is None
    await set_password_from_setup(hub.db, staff_id=staff["id"], password=PASSWORD, now=hub.clock.now())
    assert await get_staff_by_setup_token(hub.db, secret=SECRET, token=token, now=hub.clock.now()) is None
    late = await create_staff(hub.db, username="bob", role="admin", secret=SECRET, now=hub.clock.now(), hours=1)
    hub.clock.advance(hours=1)
    assert await get_staff_by_setup_token(hub.db, secret=SECRET, token=late, now=hub.clock.now()) is None
    assert [s["username"] for s in await list_staff(hub.db, scope=SYSTEM)] == ["alice", "bob"]
    assert await _actions(hub) == ["staff_created", "staff_password_set", "staff_created"]


@pytest.mark.parametrize(
    ("username", "role", "problem"),
    [
        ("carol", "boss", "role must be"),
        ("", "agent", "username"),
        ("carol smith", "agent", "username"),
        ("ALICE", "agent", "already"),
    ],
)
async def test_bad_or_taken_names_and_unknown_roles_are_refused(
    hub: Harness, username: str, role: str, problem: str
) -> None:
    await create_staff(hub.db, username="alice", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    with pytest.raises(ValueError, match=problem):
        await create_staff(hub.db, username=username, role=role, secret=SECRET, now=hub.clock.now(), hours=24)


async def test_wrong_passwords_lock_the_account_and_a_locked_account_refuses_even_the_right_one(hub: Harness) -> None:
    await hub.create_staff_user(username="alice", password=PASSWORD, totp_secret=TOTP)

    async def check(password: str) -> tuple[bool, bool]:
        result = await check_password(hub.db, username="ALICE", password=password, now=hub.clock.now(), policy=POLICY)
        return result.ok, result.locked

    assert await check(PASSWORD) == (True, False)
    assert [await check("wrong password!") for _ in range(3)] == [(False, False), (False, False), (False, True)]
    assert await check(PASSWORD) == (False, True)
    hub.clock.advance(minutes=15)
    assert await check(PASSWORD) == (True, False)
    nobody = await check_password(hub.db, username="nobody", password=PASSWORD, now=hub.clock.now(), policy=POLICY)
    assert nobody == Check(False)
    assert (await _actions(hub)).count("staff_locked") == 1


async def test_an_authenticator_code_is_accepted_once(hub: Harness) -> None:
    staff = await hub.create_staff_user(username="alice", password=PASSWORD, totp_secret=TOTP)
    code = pyotp.TOTP(TOTP).at(hub.clock.now())
    first = await check_totp(hub.db, staff_id=staff, code=code, now=hub.clock.now(), policy=POLICY)
    again = await check_totp(hub.db, staff_id=staff, code=code, now=hub.clock.now(), policy=POLICY)
    assert (first.ok, again.ok) == (True, False)
    hub.clock.advance(seconds=30)
    later = pyotp.TOTP(TOTP).at(hub.clock.now())
    assert (await check_totp(hub.db, staff_id=staff, code=later, now=hub.clock.now(), policy=POLICY)).ok
    assert await _actions(hub) == ["staff_signed_in", "staff_code_wrong", "staff_signed_in"]


async def test_enrolling_an_authenticator_needs_a_code_from_it(hub: Harness) -> None:
    staff = await hub.create_staff_user(username="alice", password=PASSWORD)
    assert not (await check_totp(hub.db, staff_id=staff, code="123456", now=hub.clock.now(), policy=POLICY)).ok
    wrong = await enrol_totp(hub.db, staff_id=staff, secret=TOTP, code="000000", now=hub.clock.now(), policy=POLICY)
    assert not wrong.ok
    code = pyotp.TOTP(TOTP).at(hub.clock.now())
    assert (await enrol_totp(hub.db, staff_id=staff, secret=TOTP, code=code, now=hub.clock.now(), policy=POLICY)).ok
    row = await get_staff(hub.db, staff)
    assert row is not None and (row["totp_secret"], row["failed_attempts"]) == (TOTP, 0) and row["enrolled_at"]


async def test_disabling_ends_sessions_frees_claimed_tasks_and_refuses_sign_in(hub: Harness) -> None:
    admin = await hub.create_staff_user(username="root", role="admin")
    agent = await hub.create_staff_user(username="alice", password=PASSWORD, totp_secret=TOTP)
    task = await hub.create_task(patient_id=await hub.create_patient(), status="claimed", claimed_by=agent)
    token = await start_staff_session(
        hub.db, secret=SECRET, staff_id=agent, stage=StaffSessionStage.ACTIVE, at=hub.clock.now()
    )
    await disable_staff(hub.db, staff_id=agent, by=admin, now=hub.clock.now())
    idle = timedelta(minutes=30)
    assert await get_staff_session(hub.db, secret=SECRET, token=token, now=hub.clock.now(), idle=idle) is None
    freed = await hub.db.fetch_one("SELECT status, claimed_by FROM tasks WHERE id = ?", (task,))
    assert freed == {"status": "open", "claimed_by": None}
    refused = await check_password(hub.db, username="alice", password=PASSWORD, now=hub.clock.now(), policy=POLICY)
    assert not refused.ok and not refused.locked  # answered like a wrong password
    audit = await hub.db.fetch_all("SELECT actor_id, action, record_id FROM audit_events")
    assert audit == [{"actor_id": str(admin), "action": "staff_disabled", "record_id": str(agent)}]


async def test_resetting_the_authenticator_ends_sessions_and_asks_for_a_new_one(hub: Harness) -> None:
    admin = await hub.create_staff_user(username="root", role="admin")
    agent = await hub.create_staff_user(username="alice", password=PASSWORD, totp_secret=TOTP)
    token = await start_staff_session(
        hub.db, secret=SECRET, staff_id=agent, stage=StaffSessionStage.ACTIVE, at=hub.clock.now()
    )
    await reset_totp(hub.db, staff_id=agent, by=admin, now=hub.clock.now())
    idle = timedelta(minutes=30)
    assert await get_staff_session(hub.db, secret=SECRET, token=token, now=hub.clock.now(), idle=idle) is None
    row = await get_staff(hub.db, agent)
    assert row is not None and (row["totp_secret"], row["enrolled_at"]) == (None, None)
    assert (await check_password(hub.db, username="alice", password=PASSWORD, now=hub.clock.now(), policy=POLICY)).ok
