"""Security code rules: pure functions, no database and no clock."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.codes import (
    CodePolicy,
    clean_code,
    code_state,
    hash_code,
    is_well_formed,
    keyed_hash,
    new_code,
    new_token,
    valid_from,
)

POLICY = CodePolicy(lifetime=timedelta(seconds=150), max_guesses=5)
ISSUED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_new_code_is_six_random_digits_with_leading_zeros_kept() -> None:
    codes = [new_code() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
    assert any(code.startswith("0") for code in codes)  # 10% each; zero-padded, not shortened
    assert len(set(codes)) > 1950


def test_new_token_is_url_safe_and_unguessable() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)


@pytest.mark.parametrize(
    ("after", "failed_guesses", "state"),
    [
        (timedelta(0), 0, "live"),
        (timedelta(seconds=149), 0, "live"),
        (timedelta(seconds=149, microseconds=999_999), 4, "live"),
        (timedelta(seconds=150), 0, "expired"),
        (timedelta(seconds=151), 0, "expired"),
        (timedelta(hours=5), 0, "expired"),
        (timedelta(seconds=10), 5, "locked"),
        (timedelta(seconds=10), 6, "locked"),
        (timedelta(seconds=151), 5, "locked"),  # locked says more than expired: a new code is the only way
    ],
)
def test_code_state_at_its_boundaries(after: timedelta, failed_guesses: int, state: str) -> None:
    assert code_state(issued_at=ISSUED, now=ISSUED + after, failed_guesses=failed_guesses, policy=POLICY) == state


@pytest.mark.parametrize("after", [timedelta(seconds=149), timedelta(seconds=150), timedelta(seconds=151)])
def test_valid_from_agrees_with_code_state(after: timedelta) -> None:
    """The store's SQL keeps codes issued after valid_from(now); that must be exactly the live ones."""
    now = ISSUED + after
    live_by_sql = ISSUED > valid_from(now, POLICY)
    assert live_by_sql == (code_state(issued_at=ISSUED, now=now, failed_guesses=0, policy=POLICY) == "live")


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("123456", "123456"),
        ("123 456", "123456"),
        (" 123-456 ", "123456"),
        ("\t12 34 56\t", "123456"),
        ("12a456", "12a456"),
        ("1" * 40, "1" * 20),
        ("", ""),
    ],
)
def test_clean_code_drops_spaces_and_dashes_only(typed: str, cleaned: str) -> None:
    assert clean_code(typed) == cleaned


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("123456", True),
        ("000000", True),
        ("12345", False),
        ("1234567", False),
        ("12a456", False),
        ("١٢٣٤٥٦", False),  # Arabic-Indic digits pass str.isdigit but are not a code we sent
        ("", False),
    ],
)
def test_is_well_formed(code: str, ok: bool) -> None:
    assert is_well_formed(code) is ok


def test_hash_code_is_keyed_and_bound_to_its_challenge() -> None:
    digest = hash_code("key", "challenge-1", "123456")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert "123456" not in digest
    assert digest == hash_code("key", "challenge-1", "123456")
    assert digest != hash_code("other key", "challenge-1", "123456")
    assert digest != hash_code("key", "challenge-2", "123456")
    assert digest != hash_code("key", "challenge-1", "123457")


def test_keyed_hash_keeps_its_parts_apart() -> None:
    assert keyed_hash("key", "ab", "c") != keyed_hash("key", "a", "bc")


def test_only_the_first_40_characters_typed_are_read() -> None:
    # A pasted essay is not read whole: 40 characters, then at most 20 of what is left.
    assert clean_code(" " * 40 + "123456") == ""
    assert clean_code(" " * 39 + "123456") == "1"
    assert clean_code("1X-2X") == "1X2X"  # only spaces, dashes and tabs go


def test_stored_hashes_keep_their_format() -> None:
    # Codes, tokens and contacts are stored as these: a change of format would orphan every stored hash.
    assert keyed_hash("key", "a", "b") == hmac.new(b"key", b"a\x1fb", hashlib.sha256).hexdigest()
    assert hash_code("key", "challenge-1", "123456") == keyed_hash("key", "code", "challenge-1", "123456")
