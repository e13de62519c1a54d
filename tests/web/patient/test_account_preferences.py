import json
from typing import Any

import httpx
import pytest

from hub.clock import to_db
from hub.store.sessions import create_session
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio

EMAIL = "margaret@example.com"


async def state(hub: Harness) -> dict[str, list[dict[str, Any]]]:
    return {
        table: await hub.db.fetch_all(f"SELECT * FROM {table} ORDER BY id")
        for table in ("patients", "audit_events", "events")
    }


async def preferences(hub: Harness, patient_id: int) -> tuple[str, int, int]:
    row = await hub.db.fetch_one(
        "SELECT contact_preference, paperless, opted_out FROM patients WHERE id = ?", (patient_id,)
    )
    assert row is not None
    return row["contact_preference"], row["paperless"], row["opted_out"]


async def save(hub: Harness, data: dict[str, str]) -> httpx.Response:
    return await hub.post_form("/preferences", data)


async def preference_audit(hub: Harness) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_type, record_id, detail, at FROM audit_events"
        " WHERE action = 'preferences_changed' ORDER BY id"
    )


async def test_page_shows_the_current_choices(hub: Harness) -> None:
    await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    response = await hub.client.get("/preferences")
    assert response.status_code == 200
    check_page(response.text)
    html = response.text
    assert 'value="sms" checked' in html
    assert 'value="no" checked' in html  # paperless: no paper letters
    assert 'value="yes" checked' in html  # texts and emails wanted
    assert 'value="email"' in html


async def test_saving_changes_the_patient_and_is_audited_and_told_to_the_hospital(hub: Harness) -> None:
    patient = await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    assert await preferences(hub, patient) == ("sms", 1, 0)
    saved_at = hub.clock.now()

    response = await save(hub, {"contact_preference": "email", "paper": "yes", "digital": "no"})
    assert (response.status_code, response.headers["location"]) == (303, "/preferences?saved=1")
    assert await preferences(hub, patient) == ("email", 0, 1)
    updated = await hub.db.fetch_one("SELECT updated_at FROM patients WHERE id = ?", (patient,))
    assert updated == {"updated_at": to_db(saved_at)}
    assert await preference_audit(hub) == [
        {
            "actor_type": "patient",
            "actor_id": str(patient),
            "record_type": "patient",
            "record_id": str(patient),
            "detail": "contact_preference,opted_out,paperless",
            "at": to_db(saved_at),
        }
    ]
    events = await hub.db.fetch_all("SELECT kind, patient_id, data FROM events")
    assert [(e["kind"], e["patient_id"]) for e in events] == [("patient.preferences_changed", patient)]
    assert json.loads(events[0]["data"]) == {"contact_preference": "email", "paperless": False, "opted_out": True}

    page = await hub.client.get("/preferences?saved=1")
    check_page(page.text)
    assert "Your contact preferences have been saved." in page.text
    assert 'value="email" checked' in page.text

    hub.clock.advance(minutes=1)
    response = await save(hub, {"contact_preference": "sms", "paper": "yes", "digital": "yes"})
    assert response.status_code == 303
    assert await preferences(hub, patient) == ("sms", 0, 0)
    assert [a["detail"] for a in await preference_audit(hub)] == [
        "contact_preference,opted_out,paperless",
        "contact_preference,opted_out",
    ]
    events = await hub.db.fetch_all("SELECT data FROM events ORDER BY id")
    assert json.loads(events[-1]["data"]) == {"contact_preference": "sms", "paperless": False, "opted_out": False}


async def test_saving_the_same_values_again_writes_nothing(hub: Harness) -> None:
    await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    choices = {"contact_preference": "email", "paper": "no", "digital": "yes"}
    assert (await save(hub, choices)).status_code == 303
    before = await state(hub)
    assert len(await preference_audit(hub)) == 1

    hub.clock.advance(minutes=1)
    response = await save(hub, choices)
    assert (response.status_code, response.headers["location"]) == (303, "/preferences?saved=1")
    assert await state(hub) == before


async def test_the_unchanged_defaults_write_nothing(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()
    before = await state(hub)
    response = await save(hub, {"contact_preference": "sms", "paper": "no", "digital": "yes"})
    assert response.status_code == 303
    assert await state(hub) == before


async def test_email_without_an_email_address_is_refused(hub: Harness) -> None:
    patient = await hub.create_patient(email=None)
    await hub.sign_in()
    page = await hub.client.get("/preferences")
    assert 'value="email"' not in page.text  # only ways we can reach the patient are offered
    before = await state(hub)

    response = await save(hub, {"contact_preference": "email", "paper": "yes", "digital": "no"})
    assert response.status_code == 422
    check_page(response.text)
    assert "We do not have an email address for you" in response.text
    assert await state(hub) == before
    assert await preferences(hub, patient) == ("sms", 1, 0)


async def test_text_without_a_mobile_is_refused(hub: Harness) -> None:
    patient = await hub.create_patient(mobile=None, email=EMAIL, contact_preference="email")
    await hub.sign_in(EMAIL, "1948-03-14")
    before = await state(hub)
    response = await save(hub, {"contact_preference": "sms", "paper": "no", "digital": "yes"})
    assert response.status_code == 422
    check_page(response.text)
    assert "We do not have a mobile number for you" in response.text
    assert await state(hub) == before
    assert await preferences(hub, patient) == ("email", 1, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"paper": "yes", "digital": "yes"}, "Select how you would like us to contact you"),
        ({"contact_preference": "sms", "digital": "yes"}, "Select whether you want letters by post as well"),
        ({"contact_preference": "sms", "paper": "yes"}, "Select whether you want texts and emails from us"),
        ({"contact_preference": "post", "paper": "yes", "digital": "yes"}, "Select how you would like us"),
        ({"contact_preference": "sms", "paper": "maybe", "digital": "yes"}, "letters by post as well"),
        ({"contact_preference": "sms", "paper": "yes", "digital": "1"}, "texts and emails from us"),
        ({}, "Select how you would like us to contact you"),
    ],
)
async def test_missing_or_unknown_answers_are_refused(hub: Harness, data: dict[str, str], message: str) -> None:
    await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    before = await state(hub)
    response = await save(hub, data)
    assert response.status_code == 422
    check_page(response.text)
    assert message in response.text
    assert "There is a problem" in response.text
    assert await state(hub) == before


async def test_preferences_need_sign_in(hub: Harness) -> None:
    await hub.create_patient(email=EMAIL)
    response = await hub.client.get("/preferences")
    assert (response.status_code, response.headers["location"]) == (303, "/")


async def test_one_way_to_reach_the_patient_is_stated_not_offered_as_a_choice(hub: Harness) -> None:
    patient = await hub.create_patient(email=None)
    await hub.sign_in()
    page = await hub.get_page("/preferences")
    assert not page.document.findall(".//input[@name='contact_preference']")  # no lone radio button
    text = " ".join(page.text.split())
    assert "We tell you about appointments by text message to 07700 900001." in text
    assert "We do not have an email address for you." in text
    response = await save(hub, {"paper": "yes", "digital": "yes"})
    assert (response.status_code, response.headers["location"]) == (303, "/preferences?saved=1")
    assert await preferences(hub, patient) == ("sms", 0, 0)


async def test_no_way_but_post_asks_nothing_about_texts_and_emails(hub: Harness) -> None:
    patient = await hub.create_patient(mobile=None, email=None)
    async with hub.db.write() as tx:  # signed in some other way (NHS login): the page must still make sense
        token = await create_session(tx, secret=hub.settings.secret_key, patient_id=patient, at=hub.clock.now())
    hub.client.cookies.set("hub_session", token, domain="testserver.local")
    page = await hub.get_page("/preferences")
    assert not page.document.findall(".//input[@name='contact_preference']")
    assert not page.document.findall(".//input[@name='digital']")
    assert "We do not have a mobile number or email address for you, so we write to you by post." in page.text
    response = await save(hub, {"paper": "yes"})
    assert response.status_code == 303
    assert await preferences(hub, patient) == ("sms", 0, 0)


async def test_the_contacts_on_record_are_shown_in_full_to_the_signed_in_patient(hub: Harness) -> None:
    await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    page = await hub.get_page("/preferences")
    [sms] = page.document.findall(".//input[@value='sms']")
    [email] = page.document.findall(".//input[@value='email']")
    assert "To 07700 900001" in page.text and f"To {EMAIL}" in page.text
    assert sms.get("aria-describedby") and email.get("aria-describedby")  # the hint is read with the choice


async def test_post_choices_have_labels_that_say_what_each_means(hub: Harness) -> None:
    await hub.create_patient(email=EMAIL)
    await hub.sign_in()
    text = " ".join((await hub.get_page("/preferences")).text.split())
    assert "Yes, post my letters to me as well" in text
    assert "No, contact me only by post" in text
    assert "we post everything to you, whatever you answer here" in text


async def test_the_appointments_page_links_to_contact_preferences(hub: Harness) -> None:
    # On a phone the header puts "Contact preferences" under "More"; the page itself leads there too.
    await hub.create_patient()
    await hub.sign_in()
    page = await hub.get_page("/appointments")
    main = page.document.find(".//main")
    assert main is not None
    assert [a for a in main.iter("a") if a.get("href") == "/preferences"]
