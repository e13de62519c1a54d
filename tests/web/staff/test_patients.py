"""Finding a patient in the console, their record, and the two actions on it: stop texts, resend the link."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hub.clock import to_db
from hub.rules.appointments import ActionPolicy
from hub.store.appointments import request_rebook
from hub.store.patients import update_preferences
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.pages import app_client, check_page
from tests.staff_harness import set_up_staff, submit_password

pytestmark = pytest.mark.anyio
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
MARGARET = {
    "nhs_number": "943 476 5919",
    "given_name": "Margaret",
    "family_name": "Jones",
    "date_of_birth": "1948-03-14",
    "mobile": "07700 900001",
    "contact_preference": "sms",
}
MARGARET_DOB = {"dob-day": "14", "dob-month": "3", "dob-year": "1948"}


async def _pas_patient(hub: Harness, ref: str, *, trust: str = "RAL", **fields: Any) -> int:
    """A patient as the hospital system sends them, through the integration API."""
    if await hub.db.fetch_one("SELECT id FROM organisations WHERE code = ?", (trust,)) is None:
        await hub.create_organisation(code=trust, name=f"Trust {trust}")
    key = await hub.create_api_key(organisation_code=trust, name=f"pas-{ref}")
    response = await hub.client.put(
        f"/api/v1/patients/{ref}", json={**MARGARET, **fields}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201, response.text
    row = await hub.db.fetch_one(
        "SELECT p.id FROM patients p JOIN organisations o ON o.id = p.organisation_id WHERE o.code = ? AND p.mrn = ?",
        (trust, ref),
    )
    assert row is not None
    return int(row["id"])


async def _found(hub: Harness, **query: str) -> list[int]:
    """The patients a search lists, in order."""
    page = await hub.client.get("/staff/patients", params=query)
    assert page.status_code == 200, page.text
    check_page(page.text)
    return [int(i) for i in re.findall(r'<a href="/staff/patients/(\d+)">', page.text)]


async def _press(hub: Harness, patient_id: int, action: str, token: str | None = None) -> httpx.Response:
    """Presses the button on the patient's record, with the page's CSRF token unless given another."""
    if token is None:
        token = await hub.csrf(f"/staff/patients/{patient_id}")
    return await hub.client.post(f"/staff/patients/{patient_id}/{action}", data={"csrf_token": token})


async def _audit(hub: Harness, action: str) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_type, record_id FROM audit_events WHERE action = ? ORDER BY id", (action,)
    )


async def _outbox(hub: Harness) -> list[dict[str, Any]]:
    """Patients' links queued: sign-in codes are not this file's business."""
    return await hub.db.fetch_all(
        "SELECT kind, channel, recipient, lane, patient_id, personalisation FROM outbox_messages"
        " WHERE kind = 'patient_link' ORDER BY id"
    )


# Search


async def test_search_by_nhs_number_hospital_number_or_name_and_date_of_birth(hub: Harness) -> None:
    margaret = await _pas_patient(hub, "MRN1")
    peter = await _pas_patient(
        hub, "MRN2", nhs_number="401 023 2137", given_name="Peter", date_of_birth="1951-07-02", mobile="07700 900002"
    )
    await set_up_staff(hub)
    assert await _found(hub, nhs_number="943 476 5919") == [margaret]
    assert await _found(hub, nhs_number="4010232137") == [peter]
    assert await _found(hub, mrn=" mrn2 ") == [peter]
    assert await _found(hub, family_name="JONES", **MARGARET_DOB) == [margaret]
    peters_dob = {"dob-day": "02", "dob-month": "07", "dob-year": "1951"}
    assert await _found(hub, family_name=" jones ", **peters_dob) == [peter]
    page = (await hub.client.get("/staff/patients", params={"mrn": "MRN1"})).text
    assert "1 patient found" in page
    assert "Margaret Jones</a>, born 14 March 1948, hospital number MRN1 (Trust RAL)" in page


async def test_a_search_that_matches_nobody_says_so(hub: Harness) -> None:
    await _pas_patient(hub, "MRN1")
    await set_up_staff(hub)
    assert await _found(hub, nhs_number="401 023 2137") == []
    assert await _found(hub, mrn="MRN9") == []
    assert await _found(hub, family_name="Jones", **{**MARGARET_DOB, "dob-day": "15"}) == []
    assert await _found(hub, family_name="Jon", **MARGARET_DOB) == []  # whole names only, not a fishing trip
    assert "0 patients found" in (await hub.client.get("/staff/patients", params={"mrn": "MRN9"})).text
    blank = await hub.client.get("/staff/patients", params={"nhs_number": " ", "mrn": ""})
    assert blank.status_code == 200 and "patients found" not in blank.text  # an empty form is not a search


NAME = {"family_name": "Jones"}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (NAME, "dob-day", "Enter the patient&#39;s date of birth"),
        (MARGARET_DOB, "family_name", "Enter the family name with the date of birth"),
        ({**NAME, **MARGARET_DOB, "dob-day": "31", "dob-month": "2"}, "dob-day", "Date of birth must be a real date"),
        ({**NAME, **MARGARET_DOB, "dob-year": "2027"}, "dob-day", "Date of birth must be in the past"),
        ({**NAME, **MARGARET_DOB, "dob-year": "48"}, "dob-day", "Year must include 4 numbers"),
        ({**NAME, **MARGARET_DOB, "dob-day": "x"}, "dob-day", "Date of birth must be a real date, in numbers"),
        ({**NAME, **MARGARET_DOB, "dob-day": "9" * 30}, "dob-day", "Date of birth must be a real date"),
        ({**NAME, "nhs_number": "9434765919"}, "dob-day", "Enter the patient&#39;s date of birth"),
    ],
)
async def test_a_search_the_form_cannot_use_says_what_to_fix(
    hub: Harness, query: dict[str, str], field: str, message: str
) -> None:
    await _pas_patient(hub, "MRN1")
    await set_up_staff(hub)
    page = await hub.client.get("/staff/patients", params=query)
    assert page.status_code == 400
    check_page(page.text)
    assert f'<a href="#{field}"> {message} </a>' in " ".join(page.text.split())  # the summary links to the field
    assert 'id="results"' not in page.text


async def test_search_lists_at_most_fifty_patients(hub: Harness) -> None:
    for _ in range(51):
        await hub.create_patient(family_name="Smith", dob="1960-01-01")
    await set_up_staff(hub)
    query = {"family_name": "Smith", "dob-day": "1", "dob-month": "1", "dob-year": "1960"}
    found = await _found(hub, **query)
    assert len(found) == 50 and found == sorted(found)
    page = (await hub.client.get("/staff/patients", params=query)).text
    assert "More than 50 patients found" in page and "The first 50 are listed" in page
    # Exactly fifty is not "more than fifty".
    async with hub.db.write() as tx:
        await tx.execute("DELETE FROM patients WHERE id = ?", (max(found) + 1,))
    page = (await hub.client.get("/staff/patients", params=query)).text
    assert "50 patients found" in page and "More than" not in page


async def test_search_covers_every_trust_of_the_agent_and_names_each_patients_trust(hub: Harness) -> None:
    # An agent of both trusts sees both patients (one of one trust only: tests/web/staff/test_common_scope.py).
    ours = await _pas_patient(hub, "MRN1")
    theirs = await _pas_patient(hub, "MRN1", trust="RVL", given_name="Mary")
    await set_up_staff(hub, organisations=["RAL", "RVL"])
    assert await _found(hub, mrn="MRN1") == [ours, theirs]
    page = (await hub.client.get("/staff/patients", params={"mrn": "MRN1"})).text
    assert "hospital number MRN1 (Trust RAL)" in page and "hospital number MRN1 (Trust RVL)" in page


async def test_search_finds_a_family_name_with_an_accented_capital(hub: Harness) -> None:
    patient = await _pas_patient(hub, "MRN1", family_name="Ó Briain")
    await set_up_staff(hub)
    assert await _found(hub, family_name="Ó Briain", **MARGARET_DOB) == [patient]


async def test_search_text_the_database_cannot_hold_is_not_a_server_error(hub: Harness) -> None:
    await set_up_staff(hub)
    # Starlette answers a 500 and then re-raises for the server's log; this client takes the answer instead.
    async with app_client(
        hub.app, base_url=hub.client.base_url, cookies=hub.client.cookies, raise_app_exceptions=False
    ) as c:
        for query in ({"nhs_number": "943\x00"}, {"mrn": "MRN\x001"}, {"family_name": "Jo\x00nes", **MARGARET_DOB}):
            response = await c.get("/staff/patients", params=query)
            assert response.status_code < 500, query


# The record


async def test_the_record_shows_appointments_requests_messages_and_audit(hub: Harness) -> None:
    patient = await _pas_patient(hub, "MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A-OURS", specialty="Dermatology")
    done = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="Mornings",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert done.done
    task = await hub.db.fetch_one("SELECT id FROM tasks WHERE patient_id = ?", (patient,))
    assert task is not None
    stranger = await hub.create_patient(mobile="+447700900009", family_name="Stranger")
    await hub.create_appointment(patient_id=stranger, ref="A-THEIRS")
    await set_up_staff(hub)
    assert (await _press(hub, patient, "send-link")).status_code == 303
    # A code the web process died before sending: it expired, and says so.
    await hub.create_message(patient_id=patient, kind="security_code", lane="immediate", status="expired")
    page = await hub.client.get(f"/staff/patients/{patient}")
    assert page.status_code == 200
    check_page(page.text)
    text = page.text
    assert "<h1>Margaret Jones</h1>" in text and "9434765919" in text and "07700 900001" in text
    # Human words, not stored values.
    assert "14 March 1948" in text and "Text message" in text and "MRN1 (Trust RAL)" in text
    for stored in ("+447700900001", "1948-03-14", ">sms<", "rebook_requested"):
        assert stored not in text, stored
    assert "Dermatology at Royal Free Hospital. Booked, rebook requested. Reference A-OURS, version 0." in text
    assert f'<a href="/staff/tasks/{task["id"]}">Rebook request</a>' in text
    assert "Patient link by text message, queued" in text
    assert "Security code by text message, expired" in text
    assert f"Link resent: patient {patient}, by alice" in text
    assert f"Rebook requested: appointment {appointment}, by The patient" in text
    assert "A-THEIRS" not in text and "Stranger" not in text


async def test_the_record_shows_agents_work_on_its_tasks_and_the_patient_opening_letters(hub: Harness) -> None:
    patient = await _pas_patient(hub, "MRN1")
    appointment = await hub.create_appointment(patient_id=patient)
    letter = await hub.create_letter(patient_id=patient, appointment_id=appointment)
    task = await hub.create_task(patient_id=patient, appointment_id=appointment)
    await hub.sign_in()
    assert (await hub.client.get(f"/letters/{letter}")).status_code == 200
    await set_up_staff(hub, username="bob")
    assert (await hub.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff")).status_code == 303
    text = (await hub.client.get(f"/staff/patients/{patient}")).text
    assert f"Letter viewed: letter {letter}, by The patient" in text
    assert f"Task claimed: task {task}, by bob" in text


async def test_a_record_with_nothing_yet_says_none(hub: Harness) -> None:
    patient = await hub.create_patient(mobile=None, email=None)
    await set_up_staff(hub)
    page = await hub.client.get(f"/staff/patients/{patient}")
    check_page(page.text)
    assert page.text.count("<p>None.</p>") == 4
    assert "/stop-texts" not in page.text  # no mobile, so no texts to stop


async def test_an_unknown_patient_is_not_found(hub: Harness) -> None:
    patient = await hub.create_patient()
    await set_up_staff(hub)
    for path in (f"/staff/patients/{patient + 1}", "/staff/patients/abc", "/staff/patients/" + "9" * 19):
        response = await hub.client.get(path)
        assert response.status_code == 404, path
        check_page(response.text)


async def test_actions_on_an_unknown_patient_are_not_found_and_change_nothing(hub: Harness) -> None:
    patient = await hub.create_patient()
    await set_up_staff(hub)
    token = await hub.csrf(f"/staff/patients/{patient}")
    for action in ("stop-texts", "send-link"):
        response = await _press(hub, patient + 1, action, token)
        assert response.status_code == 404, action
    assert await _audit(hub, "sms_opted_out") == [] and await _audit(hub, "link_resent") == []
    assert await _outbox(hub) == []


# Stop texts


@pytest.mark.parametrize("role", ["agent", "admin"])
async def test_stop_texts_stops_them_and_is_audited(hub: Harness, role: str) -> None:
    patient = await hub.create_patient(email="margaret@example.com")
    staff = await set_up_staff(hub, "alice", role)
    hub.clock.advance(minutes=5)
    response = await _press(hub, patient, "stop-texts")
    assert response.status_code == 303
    assert response.headers["location"] == f"/staff/patients/{patient}?done=opted_out"
    row = await hub.db.fetch_one("SELECT sms_opted_out, opted_out, updated_at FROM patients WHERE id = ?", (patient,))
    assert row == {"sms_opted_out": 1, "opted_out": 0, "updated_at": to_db(hub.clock.now())}
    assert await _audit(hub, "sms_opted_out") == [
        {"actor_type": "agent", "actor_id": str(staff.id), "record_type": "patient", "record_id": str(patient)}
    ]
    # The hospital hears of it as of a STOP by text.
    events = await hub.db.fetch_all("SELECT kind, patient_id, data FROM events WHERE kind LIKE 'patient.sms%'")
    assert [(e["kind"], e["patient_id"], json.loads(e["data"])) for e in events] == [
        ("patient.sms_opted_out", patient, {"by": "booking_centre"})
    ]
    # A second press (a double submit, another agent) changes and records nothing more.
    assert (await _press(hub, patient, "stop-texts")).status_code == 303
    assert len(await _audit(hub, "sms_opted_out")) == 1
    assert len(await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'patient.sms_opted_out'")) == 1
    page = (await hub.client.get(response.headers["location"])).text
    check_page(page)
    assert "Texts are stopped for this patient" in page and "07700 900001 (texts stopped)" in page
    assert "/stop-texts" not in page
    # The link now goes by email, the other way we have.
    assert (await _press(hub, patient, "send-link")).headers["location"].endswith("?done=link_sent")
    assert [(m["channel"], m["recipient"]) for m in await _outbox(hub)] == [("email", "margaret@example.com")]


async def test_both_actions_need_this_browsers_csrf_token(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    patient = await hub.create_patient()
    await set_up_staff(hub)
    foreign = await new_browser(hub).csrf("/staff/sign-in")
    right = await hub.csrf(f"/staff/patients/{patient}")
    for token in ("", "forged", foreign, right[:-1] + ("1" if right.endswith("0") else "0")):
        for action in ("stop-texts", "send-link"):
            response = await _press(hub, patient, action, token)
            assert response.status_code == 403, (action, token)
            assert "This form has expired" in response.text
    row = await hub.db.fetch_one("SELECT sms_opted_out FROM patients WHERE id = ?", (patient,))
    assert row == {"sms_opted_out": 0}
    assert await _audit(hub, "sms_opted_out") == [] and await _outbox(hub) == []


# Resend the link


async def test_send_link_queues_the_patients_own_link_by_their_usual_channel(hub: Harness) -> None:
    texts = await hub.create_patient(email="margaret@example.com")
    emails = await hub.create_patient(
        given_name="Peter", mobile="+447700900002", email="peter@example.com", contact_preference="email"
    )
    staff = await set_up_staff(hub)
    for patient in (texts, emails):
        response = await _press(hub, patient, "send-link")
        assert response.headers["location"] == f"/staff/patients/{patient}?done=link_sent"
    page = (await hub.client.get(f"/staff/patients/{emails}?done=link_sent")).text
    assert "The patient&#39;s link is on its way." in page
    sent = await _outbox(hub)
    assert [(m["kind"], m["lane"], m["channel"], m["recipient"], m["patient_id"]) for m in sent] == [
        ("patient_link", "bulk", "sms", "+447700900001", texts),
        ("patient_link", "bulk", "email", "peter@example.com", emails),
    ]
    for message, patient in zip(sent, (texts, emails), strict=True):
        link = json.loads(message["personalisation"])["link"]
        assert link == f"{hub.settings.base_url}/p/{await hub.link_token(patient)}"
    assert [(a["actor_id"], a["record_id"]) for a in await _audit(hub, "link_resent")] == [
        (str(staff.id), str(texts)),
        (str(staff.id), str(emails)),
    ]


async def test_send_link_with_no_way_to_reach_the_patient_queues_nothing(hub: Harness) -> None:
    unreachable = await hub.create_patient(mobile=None, email=None)
    post_only = await hub.create_patient(given_name="Peter", mobile="+447700900002")
    await update_preferences(
        hub.db,
        post_only,
        contact_preference="sms",
        paperless=False,
        opted_out=True,
        templates=hub.settings.notify.templates,
        at=hub.clock.now(),
    )
    await set_up_staff(hub)
    for patient in (unreachable, post_only):
        response = await _press(hub, patient, "send-link")
        assert response.headers["location"] == f"/staff/patients/{patient}?done=no_contact"
    for patient in (unreachable, post_only):
        page = (await hub.client.get(f"/staff/patients/{patient}?done=no_contact")).text
        assert "The link was not sent" in page and "or they chose post only" in page
    assert await _outbox(hub) == [] and await _audit(hub, "link_resent") == []


# Who may


async def test_only_signed_in_staff_reach_a_patient(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    patient = await hub.create_patient()
    staff = await set_up_staff(hub)
    signed_out = new_browser(hub)
    as_patient = new_browser(hub)  # the patient's own session is not a staff one
    await as_patient.sign_in()
    halfway = new_browser(hub)  # the password, not yet the code
    assert (await submit_password(halfway, staff.username, staff.password)).status_code == 303
    for browser in (signed_out, as_patient, halfway):
        for path in ("/staff/patients", f"/staff/patients/{patient}", "/staff/patients?mrn=MRN00001"):
            response = await browser.client.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, "/staff/sign-in"), path
        token = await browser.csrf("/preferences" if browser is as_patient else "/staff/sign-in")
        for action in ("stop-texts", "send-link"):
            response = await _press(browser, patient, action, token)
            assert (response.status_code, response.headers.get("location")) == (303, "/staff/sign-in"), action
    row = await hub.db.fetch_one("SELECT sms_opted_out FROM patients WHERE id = ?", (patient,))
    assert row == {"sms_opted_out": 0} and await _outbox(hub) == []
    assert await _audit(hub, "sms_opted_out") == []


async def test_an_idle_session_is_told_it_timed_out(hub: Harness) -> None:
    patient = await hub.create_patient()
    await set_up_staff(hub)
    hub.clock.advance(minutes=hub.settings["staff.session_idle_minutes"] + 1)
    response = await hub.client.get(f"/staff/patients/{patient}")
    assert response.headers["location"] == "/staff/sign-in?timed_out=1"


async def test_no_personal_data_reaches_the_logs(hub: Harness, caplog: pytest.LogCaptureFixture) -> None:
    patient = await _pas_patient(hub, "MRN1", email="margaret@example.com")
    await set_up_staff(hub)
    with caplog.at_level(logging.DEBUG):
        await _found(hub, family_name="Jones", **MARGARET_DOB)
        await _found(hub, nhs_number="9434765919")
        await hub.client.get(f"/staff/patients/{patient}")
        await _press(hub, patient, "send-link")
        await _press(hub, patient, "stop-texts")
    # The hub's own loggers; httpx here is the test's client, whose log a server never has.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hub"))
    for personal in ("Jones", "9434765919", "7700900001", "margaret@", "1948-03-14"):
        assert personal not in logged
