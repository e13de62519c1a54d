"""The stable link carries an opaque random id (issue 14): old links (the signed patient id) keep working until
the patient's link is rotated; unknown or rotated links get the same "link does not work" page as any bad link."""

from __future__ import annotations

import json

import pytest
from itsdangerous import URLSafeSerializer

from hub.links import LegacyLink, legacy_link_token, link_token, new_link_id, read_link_token
from hub.rules.staff_scope import SYSTEM
from hub.store.links import patient_for_link, rotate_patient_link
from hub.store.staff_lookup import resend_link
from hub.vocabulary import ActorType
from tests.harness import Harness
from tests.web.patient.test_signin import count, signed_in_as

pytestmark = pytest.mark.anyio


async def _twins(hub: Harness) -> tuple[int, int]:
    """Two patients with the same mobile and date of birth: only the link tells them apart."""
    amy = await hub.create_patient(given_name="Amy", family_name="Patel", dob="2016-05-09", mobile="+447700900001")
    ben = await hub.create_patient(given_name="Ben", family_name="Patel", dob="2016-05-09", mobile="+447700900001")
    return amy, ben


async def _signs_in_as(hub: Harness, token: str) -> str | None:
    assert (await hub.client.get(f"/p/{token}")).status_code == 200
    response = await hub.submit_details("07700 900001", "2016-05-09", link=token)
    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code")
    response = await hub.submit_code((await hub.sent_codes())[-1])
    assert (response.status_code, response.headers["location"]) == (303, "/appointments")
    return await signed_in_as(hub)


async def _is_bad_link(hub: Harness, token: str) -> None:
    """The same page, word for word, as a link we never signed; and nothing starts from it."""
    page = await hub.client.get(f"/p/{token}")
    never_ours = await hub.client.get("/p/not-a-real-link")
    assert (page.status_code, never_ours.status_code) == (404, 404)
    assert page.text == never_ours.text
    assert "This link does not work" in page.text
    # A sign-in form still holding the link (opened before the rotation) is refused the same way.
    details = {"contact": "07700 900001", "dob-day": "9", "dob-month": "5", "dob-year": "2016", "link": token}
    submitted = await hub.post_form("/sign-in", details, csrf_from="/")
    assert submitted.status_code == 404
    assert await count(hub, "code_challenges") == 0


async def test_a_link_the_hub_sends_carries_a_random_link_id_not_the_patient_id(hub: Harness) -> None:
    patient = await hub.create_patient()
    staff = await hub.create_staff_user()
    await resend_link(
        hub.db, scope=SYSTEM, patient_id=patient, staff_id=staff, settings=hub.settings, now=hub.clock.now()
    )
    row = await hub.db.fetch_one("SELECT personalisation FROM outbox_messages WHERE kind = 'patient_link'")
    assert row is not None
    token = json.loads(row["personalisation"])["link"].rsplit("/", 1)[1]

    payload = URLSafeSerializer(hub.settings.secret_keys, salt="patient-link").loads(token)
    link_id = (await hub.db.fetch_one("SELECT link_id FROM patients WHERE id = ?", (patient,)) or {})["link_id"]
    assert payload == link_id != patient
    assert isinstance(payload, str) and len(payload) == 32 and str(patient) != payload
    assert await patient_for_link(hub.db, payload) == patient


async def test_a_new_link_signs_in_to_its_own_patient(hub: Harness) -> None:
    _, ben = await _twins(hub)
    assert await _signs_in_as(hub, await hub.link_token(ben)) == "Ben Patel"


async def test_an_old_style_link_still_signs_in_to_the_right_patient(hub: Harness) -> None:
    amy, ben = await _twins(hub)
    old = legacy_link_token(hub.settings, ben)
    assert read_link_token(hub.settings, old) == LegacyLink(ben)
    assert await _signs_in_as(hub, old) == "Ben Patel"


async def test_after_rotation_the_old_links_stop_working_and_the_new_one_works(hub: Harness) -> None:
    amy, ben = await _twins(hub)
    legacy = legacy_link_token(hub.settings, ben)
    before = await hub.link_token(ben)

    new_id = await rotate_patient_link(
        hub.db, patient_id=ben, actor_type=ActorType.SYSTEM, actor_id="test", now=hub.clock.now()
    )

    assert new_id is not None and await hub.link_token(ben) == link_token(hub.settings, new_id) != before
    await _is_bad_link(hub, legacy)
    await _is_bad_link(hub, before)
    assert await patient_for_link(hub.db, LegacyLink(amy)) == amy  # only the rotated patient's old link goes
    audit = await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_type, record_id, detail FROM audit_events WHERE action = ?",
        ("patient_link_rotated",),
    )
    assert audit == [
        {"actor_type": "system", "actor_id": "test", "record_type": "patient", "record_id": str(ben), "detail": ""}
    ]
    assert await _signs_in_as(hub, link_token(hub.settings, new_id)) == "Ben Patel"


async def test_an_unknown_link_id_or_patient_id_gets_the_generic_bad_link_page(hub: Harness) -> None:
    await _twins(hub)
    await _is_bad_link(hub, link_token(hub.settings, new_link_id()))
    await _is_bad_link(hub, legacy_link_token(hub.settings, 999))
