"""The patient's stable link: an opaque random id, signed, and still good after the key is rotated."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer

from hub.links import LegacyLink, legacy_link_token, link_token, new_link_id, patient_link, read_link_token
from hub.settings import Settings, load_settings

OLD_KEY = "old-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "new-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
A, B = new_link_id(), new_link_id()


def settings(secret_key: str = NEW_KEY, **overrides: object) -> Settings:
    return load_settings(environ={}, overrides={"secret_key": secret_key, **overrides})


def test_link_ids_are_random_and_opaque() -> None:
    ids = {new_link_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_patients_link_is_the_same_every_time_and_reads_back_to_their_link_id() -> None:
    s = settings(base_url="https://hub.example.nhs.uk")
    assert link_token(s, A) == link_token(s, A) != link_token(s, B)
    assert read_link_token(s, link_token(s, A)) == A
    assert patient_link(s, A) == f"https://hub.example.nhs.uk/p/{link_token(s, A)}"


def test_a_record_id_is_refused_where_a_link_id_belongs() -> None:
    with pytest.raises(TypeError):
        patient_link(settings(), 1)  # type: ignore[arg-type]


def test_the_payload_is_the_link_id_and_nothing_else() -> None:
    s = settings()
    payload = URLSafeSerializer(s.secret_keys, salt="patient-link").loads(link_token(s, A))
    assert payload == A


def test_an_old_style_link_reads_as_the_patient_id_it_carries() -> None:
    s = settings()
    assert read_link_token(s, legacy_link_token(s, 42)) == LegacyLink(42)


def test_a_link_signed_with_an_older_key_still_works_after_rotation() -> None:
    old = link_token(settings(OLD_KEY), A)
    rotated = settings(previous_secret_keys=[OLD_KEY])
    assert read_link_token(rotated, old) == A
    assert link_token(rotated, A) != old  # new links are signed with the new key
    assert read_link_token(settings(), old) is None  # once the old key is dropped, so are its links


@pytest.mark.parametrize("token", ["", "42", "not-a-token", "x" * 201])
def test_anything_but_a_link_we_signed_reads_as_nobody(token: str) -> None:
    assert read_link_token(settings(), token) is None


def test_a_tampered_or_foreign_link_reads_as_nobody() -> None:
    s = settings()
    token = link_token(s, A)
    payload, _, signature = token.rpartition(".")
    assert read_link_token(s, link_token(s, B).rpartition(".")[0] + "." + signature) is None
    assert read_link_token(s, payload + "." + signature[::-1]) is None
    assert read_link_token(settings(OLD_KEY), token) is None


@pytest.mark.parametrize("value", ["42", "x" * 32 + "y", True, None, [42], 4.2])
def test_a_signed_value_that_is_neither_a_link_id_nor_a_patient_id_reads_as_nobody(value: object) -> None:
    s = settings()
    forged = URLSafeSerializer(s.secret_keys, salt="patient-link").dumps(value)
    assert read_link_token(s, str(forged)) is None
