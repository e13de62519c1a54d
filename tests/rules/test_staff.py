"""Staff sign-in rules: passwords, authenticator codes accepted once, lockout. No database, no clock."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from hub.rules.staff import (
    accepted_step,
    hash_password,
    is_locked,
    password_matches,
    password_problem,
    provisioning_uri,
    time_step,
)

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_totp_codes_are_accepted_once_and_near_now() -> None:
    secret = pyotp.random_base32()
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    code = pyotp.TOTP(secret).at(now)
    step = accepted_step(secret, code, now=now, last_step=0)
    assert step == time_step(now)
    assert accepted_step(secret, code, now=now, last_step=step) is None  # replay
    assert accepted_step(secret, code, now=now + timedelta(seconds=30), last_step=0) == step  # one step of drift
    assert accepted_step(secret, code, now=now + timedelta(minutes=5), last_step=0) is None
    assert accepted_step(secret, "12345", now=now, last_step=0) is None


def test_password_rules() -> None:
    assert password_problem("short", "short")
    assert password_problem("long enough password", "different password")
    assert password_problem("long enough password", "long enough password") == ""


@pytest.mark.parametrize(
    ("password", "confirm", "problem"),
    [
        ("x" * 11, "x" * 11, "Password must be 12 characters or more"),
        ("x" * 12, "x" * 12, ""),
        ("x" * 200, "x" * 200, ""),
        ("x" * 201, "x" * 201, "Password must be 200 characters or fewer"),
        ("x" * 12, "y" * 12, "The passwords do not match"),
    ],
)
def test_password_length_and_confirmation(password: str, confirm: str, problem: str) -> None:
    assert password_problem(password, confirm) == problem


def test_a_password_is_stored_as_an_argon2id_hash_that_only_it_matches() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$") and "correct" not in stored
    assert password_matches(stored, "correct horse battery staple")
    assert not password_matches(stored, "correct horse battery stapler")
    assert not password_matches("not a hash", "correct horse battery staple")
    # No account (stored None) costs the same hashing as a wrong password, and never matches.
    assert not password_matches(None, "correct horse battery staple")


def test_codes_with_spaces_count_and_a_code_from_a_step_already_used_is_refused() -> None:
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).at(NOW)
    assert accepted_step(secret, f"{code[:3]} {code[3:]}", now=NOW, last_step=0) == time_step(NOW)
    assert accepted_step(secret, code, now=NOW, last_step=time_step(NOW) + 1) is None
    earlier = pyotp.TOTP(secret).at(NOW - timedelta(seconds=30))
    assert accepted_step(secret, earlier, now=NOW, last_step=0) == time_step(NOW) - 1  # one step of drift back


def test_a_lock_lasts_until_its_time_and_no_longer() -> None:
    until = NOW + timedelta(minutes=15)
    assert is_locked(until, NOW) and is_locked(until, until - timedelta(seconds=1))
    assert not is_locked(until, until) and not is_locked(None, NOW)


def test_the_authenticator_link_names_the_account_and_the_service() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", username="alice", issuer="Appointment hub")
    assert uri.startswith("otpauth://totp/Appointment%20hub:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert "issuer=Appointment%20hub" in uri


def test_a_code_from_the_next_step_is_accepted_but_not_from_two_ahead() -> None:
    # The phone's clock may run a little ahead of ours: one step, no more.
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # fixed, so no two of the steps' codes happen to be the same
    ahead = pyotp.TOTP(secret).at(NOW + timedelta(seconds=30))
    assert accepted_step(secret, ahead, now=NOW, last_step=0) == time_step(NOW) + 1
    far_ahead = pyotp.TOTP(secret).at(NOW + timedelta(seconds=60))
    assert accepted_step(secret, far_ahead, now=NOW, last_step=0) is None


def test_a_time_step_is_a_whole_30_seconds() -> None:
    assert time_step(datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)) == 1
    assert time_step(datetime(1970, 1, 1, 0, 1, 0, tzinfo=UTC)) == 2
    assert isinstance(time_step(NOW), int)


def test_an_unknown_username_never_matches_even_with_the_stand_in_password() -> None:
    # The miss is checked against a stand-in hash (for equal timing): its own password must not sign anyone in.
    assert not password_matches(None, "not-a-real-password-but-the-same-cost")
