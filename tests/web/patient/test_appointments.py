import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import html5lib
import httpx
import pytest

from hub.clock import to_db
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
PHONE = "020 7000 0000"  # the harness organisation's phone number
TEL = 'href="tel:02070000000"'
WATCHED = ("appointments", "tasks", "events", "audit_events")


async def snapshot(hub: Harness) -> dict[str, list[dict[str, Any]]]:
    return {table: await hub.db.fetch_all(f"SELECT * FROM {table} ORDER BY id") for table in WATCHED}


async def appointment(hub: Harness, appointment_id: int) -> dict[str, Any]:
    row = await hub.db.fetch_one("SELECT * FROM appointments WHERE id = ?", (appointment_id,))
    assert row is not None
    return row


async def rows(hub: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(sql, params)


async def post(hub: Harness, path: str, data: dict[str, str] | None = None) -> httpx.Response:
    # The preferences page always has a form, so it gives a CSRF token even when an appointment page has none.
    return await hub.post_form(path, data or {}, csrf_from="/preferences")


async def page(hub: Harness, path: str, status: int = 200) -> str:
    response = await hub.client.get(path)
    assert response.status_code == status, response.text
    check_page(response.text)
    return response.text


def text_of(html: str) -> str:
    document = html5lib.parse(html, namespaceHTMLElements=False)
    return " ".join(" ".join(document.itertext()).split())


def card(html: str, appointment_id: int) -> str:
    """The text of the list's card for one appointment."""
    document = html5lib.parse(html, namespaceHTMLElements=False)
    found = [
        " ".join("".join(div.itertext()).split())
        for div in document.iter("div")
        if "nhsuk-card" in (div.get("class") or "").split()
        and div.find(f".//a[@href='/appointments/{appointment_id}']") is not None
    ]
    assert len(found) == 1, f"{len(found)} cards for appointment {appointment_id}"
    return found[0]


def sections(html: str) -> dict[str, str]:
    """The list page cut at its h2 headings: heading -> the HTML up to the next one."""
    parts = re.split(r"<h2[^>]*>(.*?)</h2>", html)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def actions_on(html: str, appointment_id: int) -> dict[str, bool]:
    return {
        "confirm": f'action="/appointments/{appointment_id}/confirm"' in html,
        "rebook": f'href="/appointments/{appointment_id}/rebook"' in html,
        "cancel": f'href="/appointments/{appointment_id}/cancel"' in html,
    }


def location(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"]


# The list


async def test_list_groups_upcoming_past_and_cancelled(hub: Harness) -> None:
    patient = await hub.create_patient()
    upcoming = await hub.create_appointment(patient_id=patient, clinic="Eye clinic", starts_at=NOW + timedelta(days=3))
    later = await hub.create_appointment(patient_id=patient, clinic="Hand clinic", starts_at=NOW + timedelta(days=9))
    # Started 10 minutes ago and lasts 30: still upcoming.
    ongoing = await hub.create_appointment(
        patient_id=patient, clinic="Foot clinic", starts_at=NOW - timedelta(minutes=10)
    )
    past = await hub.create_appointment(patient_id=patient, clinic="Skin clinic", starts_at=NOW - timedelta(days=5))
    older = await hub.create_appointment(patient_id=patient, clinic="Lung clinic", starts_at=NOW - timedelta(days=50))
    attended = await hub.create_appointment(
        patient_id=patient, clinic="Knee clinic", starts_at=NOW - timedelta(days=20), status="attended"
    )
    no_show = await hub.create_appointment(
        patient_id=patient, clinic="Hip clinic", starts_at=NOW - timedelta(days=30), status="did_not_attend"
    )
    cancelled = await hub.create_appointment(
        patient_id=patient, clinic="Ear clinic", starts_at=NOW + timedelta(days=4), status="cancelled"
    )
    await hub.sign_in()

    html = await page(hub, "/appointments")
    groups = sections(html)
    assert list(groups)[:1] == ["Upcoming"]

    def ids_in(section: str) -> list[int]:
        return [int(i) for i in re.findall(r'href="/appointments/(\d+)"', groups[section])]

    assert ids_in("Upcoming") == [ongoing, upcoming, later]  # soonest first
    assert ids_in("Cancelled") == [cancelled]
    assert ids_in("Past") == [past, attended, no_show, older]  # most recent first
    assert 'href="/appointments.ics"' in groups["Upcoming"]


async def test_list_with_nothing_upcoming_says_so(hub: Harness) -> None:
    patient = await hub.create_patient()
    await hub.create_appointment(patient_id=patient, starts_at=NOW - timedelta(days=5))
    await hub.sign_in()
    html = await page(hub, "/appointments")
    assert "You have no upcoming appointments." in sections(html)["Upcoming"]
    assert 'href="/appointments.ics"' not in html


async def test_past_appointments_older_than_the_setting_are_not_listed(make_hub: MakeHub) -> None:
    for months in (24, 1):
        hub = await make_hub(past_months=months)
        patient = await hub.create_patient()
        horizon = datetime(2026 - months // 12, 11 - months % 12, 21, 10, 0, tzinfo=UTC)
        await hub.create_appointment(patient_id=patient, clinic="Inside clinic", starts_at=horizon + timedelta(hours=1))
        await hub.create_appointment(
            patient_id=patient, clinic="Outside clinic", starts_at=horizon - timedelta(hours=1)
        )
        await hub.create_appointment(patient_id=patient, clinic="Ancient clinic", starts_at=NOW - timedelta(days=2000))
        recent = await hub.create_appointment(
            patient_id=patient, clinic="Recent clinic", starts_at=NOW - timedelta(days=2)
        )
        await hub.sign_in()
        html = await page(hub, "/appointments")
        listed = {c for c in ("Inside clinic", "Outside clinic", "Ancient clinic") if c in html}
        assert listed == {"Inside clinic"}, months
        assert "Recent clinic" in card(html, recent)


async def test_each_card_shows_date_time_place_clinic_and_status(hub: Harness) -> None:
    patient = await hub.create_patient()
    summer = await hub.create_appointment(
        patient_id=patient,
        clinic="Skin clinic",
        specialty="Dermatology",
        starts_at=datetime(2026, 6, 15, 8, 30, tzinfo=UTC),
        status="attended",
    )
    winter = await hub.create_appointment(
        patient_id=patient,
        clinic="Eye clinic",
        specialty="Ophthalmology",
        starts_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
    )
    phone = await hub.create_appointment(
        patient_id=patient,
        clinic="Heart clinic",
        mode="telephone",
        starts_at=datetime(2026, 12, 4, 14, 0, tzinfo=UTC),
        request_state="confirmed",
    )
    video = await hub.create_appointment(
        patient_id=patient,
        clinic="Diabetes clinic",
        mode="video",
        starts_at=datetime(2026, 12, 5, 11, 15, tzinfo=UTC),
        request_state="rebook_requested",
    )
    cancel_asked = await hub.create_appointment(
        patient_id=patient, starts_at=datetime(2026, 12, 6, 9, 0, tzinfo=UTC), request_state="cancel_requested"
    )
    no_show = await hub.create_appointment(
        patient_id=patient, starts_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC), status="did_not_attend"
    )
    cancelled = await hub.create_appointment(
        patient_id=patient, starts_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC), status="cancelled"
    )
    await hub.sign_in()
    html = await page(hub, "/appointments")

    assert card(html, summer) == (
        "Monday 15 June 2026 at 9:30am Skin clinic (Dermatology) In person at Royal Free Hospital Attended"
    )  # BST: 08:30 UTC is 9:30 in London
    assert card(html, winter) == (
        "Thursday 3 December 2026 at 9:30am Eye clinic (Ophthalmology) In person at Royal Free Hospital Booked"
    )  # GMT
    assert (
        card(html, phone)
        == "Friday 4 December 2026 at 2pm Heart clinic (Cardiology) By telephone (Royal Free Hospital) Confirmed"
    )
    assert card(html, video) == (
        "Saturday 5 December 2026 at 11:15am Diabetes clinic (Cardiology) By video (Royal Free Hospital)"
        " Change requested"
    )
    assert card(html, cancel_asked).endswith("In person at Royal Free Hospital Cancellation requested")
    assert card(html, no_show).endswith("Did not attend")
    assert card(html, cancelled).endswith("Cancelled")


async def test_unread_letter_flag_goes_after_the_letter_is_viewed(hub: Harness) -> None:
    patient = await hub.create_patient()
    with_letter = await hub.create_appointment(patient_id=patient)
    without = await hub.create_appointment(patient_id=patient, starts_at=NOW + timedelta(days=20))
    letter = await hub.create_letter(patient_id=patient, appointment_id=with_letter, title="Clinic invitation")
    await hub.sign_in()

    html = await page(hub, "/appointments")
    assert card(html, with_letter).endswith("Booked Unread letter")
    assert "Unread letter" not in card(html, without)
    detail = await page(hub, f"/appointments/{with_letter}")
    assert f'href="/letters/{letter}"' in detail and "Unread" in text_of(detail)

    assert (await hub.client.get(f"/letters/{letter}")).status_code == 200

    html = await page(hub, "/appointments")
    assert card(html, with_letter).endswith("Booked")
    assert "Unread" not in text_of(html)
    assert "Unread" not in text_of(await page(hub, f"/appointments/{with_letter}"))


async def test_another_patients_appointments_are_never_shown(hub: Harness) -> None:
    mine = await hub.create_patient()
    theirs = await hub.create_patient(given_name="Peter", mobile="+447700900002", verification_code="PX2B9Z")
    own = await hub.create_appointment(patient_id=mine, clinic="Eye clinic")
    other = await hub.create_appointment(patient_id=theirs, clinic="Secret clinic")
    other_past = await hub.create_appointment(
        patient_id=theirs, clinic="Hidden clinic", starts_at=NOW - timedelta(days=3)
    )
    await hub.sign_in()
    before = await snapshot(hub)

    html = await page(hub, "/appointments")
    assert f'href="/appointments/{own}"' in html
    assert "Secret clinic" not in html and "Hidden clinic" not in html
    assert f"/appointments/{other}" not in html and f"/appointments/{other_past}" not in html

    for path in (
        f"/appointments/{other}",
        f"/appointments/{other}/rebook",
        f"/appointments/{other}/cancel",
        f"/appointments/{other}.ics",
    ):
        response = await hub.client.get(path)
        assert response.status_code == 404, path
        assert "Secret clinic" not in response.text
    check_page((await hub.client.get(f"/appointments/{other}")).text)
    for action, data in (
        ("confirm", {}),
        ("rebook", {"reason": "x"}),
        ("cancel", {"reason": "no_longer_needed"}),
    ):
        response = await post(hub, f"/appointments/{other}/{action}", data)
        assert response.status_code == 404, action
    assert (await hub.client.get("/appointments/999999")).status_code == 404
    assert await snapshot(hub) == before


async def test_signed_out_patient_is_sent_to_the_start(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    for path in ("/appointments", f"/appointments/{appointment_id}", f"/appointments/{appointment_id}/cancel"):
        response = await hub.client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/"), path


async def test_detail_page_shows_the_appointment_and_its_actions(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(
        patient_id=patient,
        clinic="Eye clinic",
        specialty="Ophthalmology",
        starts_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        duration_minutes=45,
        transport_booked=True,
    )
    await hub.sign_in()
    html = await page(hub, f"/appointments/{appointment_id}")
    text = text_of(html)
    assert "<title>Appointment on Thursday 3 December 2026" in html
    for expected in (
        "Date Thursday 3 December 2026",
        "Time 9:30am (about 45 minutes)",
        "Type In person",
        "Where Royal Free Hospital Pond Street, London, NW3 2QG",
        "Clinic Eye clinic",
        "Specialty Ophthalmology",
        "Status Booked",
        "Your request None",
        "Hospital transport Booked",
        "Interpreter Not booked",
    ):
        assert expected in text, expected
    assert actions_on(html, appointment_id) == {"confirm": True, "rebook": True, "cancel": True}
    assert f'href="/appointments/{appointment_id}.ics"' in html
    assert 'href="/sites/RFH?organisation=RAL"' in html


# Confirm


async def test_confirm_once_records_one_audit_row_and_one_event(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, ref="PAS-123")
    await hub.sign_in()
    audit_before = len(await rows(hub, "SELECT id FROM audit_events"))

    for attempt in range(2):
        # The first press from the page's own form; the page has no confirm form once confirmed.
        response = await hub.post_form(
            f"/appointments/{appointment_id}/confirm",
            {},
            csrf_from=f"/appointments/{appointment_id}" if attempt == 0 else "/preferences",
        )
        assert location(response) == f"/appointments/{appointment_id}?done=confirmed"

        row = await appointment(hub, appointment_id)
        assert (row["request_state"], row["status"], row["sequence"]) == ("confirmed", "booked", 0)
        audit = await rows(hub, "SELECT * FROM audit_events WHERE record_type = 'appointment' ORDER BY id")
        assert [(a["actor_type"], a["actor_id"], a["action"], a["record_type"], a["record_id"]) for a in audit] == [
            ("patient", str(patient), "confirmed", "appointment", str(appointment_id))
        ]
        assert len(await rows(hub, "SELECT id FROM audit_events")) == audit_before + 1
        events = await rows(hub, "SELECT * FROM events")
        assert [(e["kind"], e["patient_id"], e["appointment_id"]) for e in events] == [
            ("appointment.confirmed", patient, appointment_id)
        ]
        assert json.loads(events[0]["data"]) == {"appointment_ref": "PAS-123"}
        assert await rows(hub, "SELECT id FROM tasks") == []

    html = await page(hub, f"/appointments/{appointment_id}?done=confirmed")
    assert "Thank you for confirming" in html
    assert "Your request You confirmed you will attend" in text_of(html)
    assert actions_on(html, appointment_id) == {"confirm": False, "rebook": True, "cancel": True}


# Rebook


async def test_rebook_request_creates_a_callback_task(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, ref="PAS-7")
    await hub.sign_in()
    form = await page(hub, f"/appointments/{appointment_id}/rebook")
    assert 'action="/appointments/' + str(appointment_id) + '/rebook"' in form

    response = await hub.post_form(
        f"/appointments/{appointment_id}/rebook",
        {"reason": "  I am away that week  ", "preferred_times": "Weekday mornings"},
    )
    assert location(response) == f"/appointments/{appointment_id}?done=rebook"

    tasks = await rows(hub, "SELECT * FROM tasks")
    assert [
        (t["kind"], t["patient_id"], t["appointment_id"], t["reason"], t["preferred_times"], t["status"]) for t in tasks
    ] == [("rebook", patient, appointment_id, "I am away that week", "Weekday mornings", "open")]
    assert tasks[0]["created_at"] == to_db(NOW)
    row = await appointment(hub, appointment_id)
    assert (row["request_state"], row["status"]) == ("rebook_requested", "booked")
    events = await rows(hub, "SELECT * FROM events")
    assert [e["kind"] for e in events] == ["appointment.rebook_requested"]
    assert json.loads(events[0]["data"]) == {
        "appointment_ref": "PAS-7",
        "reason": "I am away that week",
        "preferred_times": "Weekday mornings",
    }
    audit = await rows(hub, "SELECT action, record_id FROM audit_events WHERE record_type = 'appointment'")
    assert audit == [{"action": "rebook_requested", "record_id": str(appointment_id)}]

    html = await page(hub, f"/appointments/{appointment_id}?done=rebook")
    assert "The booking team will call you" in html
    assert "You asked to change this appointment" in text_of(html)


async def test_rebook_reason_and_times_are_optional(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    response = await post(hub, f"/appointments/{appointment_id}/rebook")
    assert location(response) == f"/appointments/{appointment_id}?done=rebook"
    tasks = await rows(hub, "SELECT kind, reason, preferred_times FROM tasks")
    assert tasks == [{"kind": "rebook", "reason": "", "preferred_times": ""}]


async def test_asking_again_while_the_task_is_open_updates_it(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away", "preferred_times": "Mornings"})
    first = await rows(hub, "SELECT id FROM tasks")

    assert (await hub.client.get(f"/appointments/{appointment_id}/rebook")).status_code == 200
    response = await post(
        hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away longer", "preferred_times": "Afternoons"}
    )
    assert location(response) == f"/appointments/{appointment_id}?done=rebook"
    tasks = await rows(hub, "SELECT id, reason, preferred_times, status FROM tasks")
    assert tasks == [{"id": first[0]["id"], "reason": "Away longer", "preferred_times": "Afternoons", "status": "open"}]
    assert (await appointment(hub, appointment_id))["request_state"] == "rebook_requested"
    kinds = [e["kind"] for e in await rows(hub, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["appointment.rebook_requested", "appointment.rebook_updated"]


async def close_tasks(hub: Harness) -> None:
    """What the booking centre does after calling the patient back."""
    async with hub.db.write() as tx:
        await tx.execute("UPDATE tasks SET status = 'closed', closed_at = ?", (to_db(NOW),))


async def test_rebook_limit_then_phone_instead(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    for n in range(hub.settings.rebook_limit):
        html = await page(hub, f"/appointments/{appointment_id}")
        assert actions_on(html, appointment_id)["rebook"], n
        response = await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": f"try {n}"})
        assert location(response) == f"/appointments/{appointment_id}?done=rebook"
        await close_tasks(hub)
    assert hub.settings.rebook_limit == 2
    assert len(await rows(hub, "SELECT id FROM tasks WHERE kind = 'rebook'")) == 2

    html = await page(hub, f"/appointments/{appointment_id}")
    assert actions_on(html, appointment_id) == {"confirm": False, "rebook": False, "cancel": True}
    assert "You cannot ask to change this appointment online again" in html
    assert PHONE in html and TEL in html

    before = await snapshot(hub)
    response = await hub.client.get(f"/appointments/{appointment_id}/rebook")
    assert location(response) == f"/appointments/{appointment_id}?refused=limit"
    response = await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "third time"})
    assert location(response) == f"/appointments/{appointment_id}?refused=limit"
    assert await snapshot(hub) == before
    html = await page(hub, f"/appointments/{appointment_id}?refused=limit")
    assert "You have already asked to change it 2 times." in html


async def test_rebook_limit_is_a_setting(make_hub: MakeHub) -> None:
    hub = await make_hub(rebook_limit=1)
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    await post(hub, f"/appointments/{appointment_id}/rebook")
    await close_tasks(hub)
    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/rebook")
    assert location(response) == f"/appointments/{appointment_id}?refused=limit"
    assert await snapshot(hub) == before


@pytest.mark.parametrize("field", ["reason", "preferred_times"])
async def test_rebook_text_over_500_characters_is_refused(hub: Harness, field: str) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/rebook", {field: "x" * 501})
    assert response.status_code == 422
    check_page(response.text)
    assert "must be 500 characters or fewer" in response.text
    assert await snapshot(hub) == before

    response = await post(hub, f"/appointments/{appointment_id}/rebook", {field: "x" * 500})
    assert location(response) == f"/appointments/{appointment_id}?done=rebook"
    assert len(await rows(hub, f"SELECT id FROM tasks WHERE {field} = ?", ("x" * 500,))) == 1


# Cancel


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "bored"}, {"details": "no reason given"}])
async def test_cancel_needs_a_known_reason(hub: Harness, data: dict[str, str]) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/cancel", data)
    assert response.status_code == 422
    check_page(response.text)
    assert "Select why you want to cancel" in response.text
    assert await snapshot(hub) == before


async def test_cancel_details_over_500_characters_are_refused(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other", "details": "x" * 501})
    assert response.status_code == 422
    assert "Details must be 500 characters or fewer" in response.text
    assert await snapshot(hub) == before


async def test_cancel_by_default_asks_the_booking_centre(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, ref="PAS-9")
    await hub.sign_in()
    form = await page(hub, f"/appointments/{appointment_id}/cancel")
    assert "Ask to cancel appointment" in form

    response = await post(
        hub, f"/appointments/{appointment_id}/cancel", {"reason": "feeling_better", "details": "Much better now"}
    )
    assert location(response) == f"/appointments/{appointment_id}?done=cancel"
    row = await appointment(hub, appointment_id)
    assert (row["status"], row["request_state"], row["sequence"]) == ("booked", "cancel_requested", 0)
    tasks = await rows(hub, "SELECT kind, patient_id, appointment_id, reason, status FROM tasks")
    assert tasks == [
        {
            "kind": "cancel",
            "patient_id": patient,
            "appointment_id": appointment_id,
            "reason": "feeling_better: Much better now",
            "status": "open",
        }
    ]
    events = await rows(hub, "SELECT kind, data FROM events")
    assert [e["kind"] for e in events] == ["appointment.cancel_requested"]
    assert json.loads(events[0]["data"]) == {
        "appointment_ref": "PAS-9",
        "reason": "feeling_better",
        "details": "Much better now",
    }
    audit = await rows(hub, "SELECT action FROM audit_events WHERE record_type = 'appointment'")
    assert audit == [{"action": "cancel_requested"}]

    html = await page(hub, f"/appointments/{appointment_id}?done=cancel")
    assert "We have your request to cancel" in html
    assert "Status Booked" in text_of(html)

    # A second press changes nothing.
    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    assert location(response) == f"/appointments/{appointment_id}?done=cancel"
    assert await snapshot(hub) == before


async def test_immediate_cancel_cancels_and_bumps_the_sequence(make_hub: MakeHub) -> None:
    hub = await make_hub(cancel_mode="immediate")
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, ref="PAS-5", sequence=3)
    await hub.sign_in()
    assert "Cancel appointment" in await page(hub, f"/appointments/{appointment_id}/cancel")

    response = await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "treated_elsewhere"})
    assert location(response) == f"/appointments/{appointment_id}?done=cancelled"
    row = await appointment(hub, appointment_id)
    assert (row["status"], row["sequence"]) == ("cancelled", 4)
    assert await rows(hub, "SELECT id FROM tasks") == []
    events = await rows(hub, "SELECT kind, data FROM events")
    assert [e["kind"] for e in events] == ["appointment.cancelled_by_patient"]
    assert json.loads(events[0]["data"]) == {"appointment_ref": "PAS-5", "reason": "treated_elsewhere", "details": ""}
    audit = await rows(hub, "SELECT action FROM audit_events WHERE record_type = 'appointment'")
    assert audit == [{"action": "cancelled_by_patient"}]

    html = await page(hub, f"/appointments/{appointment_id}?done=cancelled")
    assert "Your appointment has been cancelled." in html
    assert actions_on(html, appointment_id) == {"confirm": False, "rebook": False, "cancel": False}

    before = await snapshot(hub)
    response = await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "treated_elsewhere"})
    assert location(response) == f"/appointments/{appointment_id}?refused=cancelled"
    assert await snapshot(hub) == before


async def test_cancel_page_warns_about_a_new_referral(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    html = await page(hub, f"/appointments/{appointment_id}/cancel")
    assert "new referral from your GP" in html
    assert "to tell the hospital" not in html
    for value in ("no_longer_needed", "feeling_better", "treated_elsewhere", "cannot_attend", "other"):
        assert f'value="{value}"' in html


@pytest.mark.parametrize(
    ("transport", "interpreter", "booked"),
    [
        (True, False, "You have hospital transport booked"),
        (False, True, "You have an interpreter booked"),
        (True, True, "You have hospital transport and an interpreter booked"),
    ],
)
async def test_cancel_page_says_to_tell_the_hospital_about_transport_or_interpreter(
    hub: Harness, transport: bool, interpreter: bool, booked: str
) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(
        patient_id=patient, transport_booked=transport, interpreter_booked=interpreter
    )
    await hub.sign_in()
    text = text_of(await page(hub, f"/appointments/{appointment_id}/cancel"))
    assert booked in text
    assert f"Call {PHONE} to tell the hospital" in text


async def test_an_email_only_patient_is_told_the_booking_team_will_email_not_call(hub: Harness) -> None:
    patient = await hub.create_patient(mobile=None, email="david.patel@example.com", contact_preference="email")
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in("david.patel@example.com")
    text = text_of(await page(hub, f"/appointments/{appointment_id}/rebook"))
    assert "The booking team will email you" in text and "will call you" not in text


@pytest.mark.parametrize(
    ("transport", "interpreter", "booked"),
    [
        (True, False, "You have hospital transport booked"),
        (False, True, "You have an interpreter booked"),
        (True, True, "You have hospital transport and an interpreter booked"),
        (False, False, ""),
    ],
)
async def test_ask_to_change_page_says_to_tell_the_booking_team_about_transport_or_interpreter(
    hub: Harness, transport: bool, interpreter: bool, booked: str
) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(
        patient_id=patient, transport_booked=transport, interpreter_booked=interpreter
    )
    await hub.sign_in()
    text = text_of(await page(hub, f"/appointments/{appointment_id}/rebook"))
    if booked:
        assert booked in text
        assert "Tell the booking team when they call" in text
    else:
        assert "You have" not in text


# Forbidden


FORBIDDEN: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (appointment fields, why_not, words on the detail page)
    "past": ({"starts_at": NOW - timedelta(days=2)}, "past", "This appointment has passed."),
    "cancelled": ({"status": "cancelled"}, "cancelled", "This appointment has been cancelled."),
    "attended": ({"status": "attended", "starts_at": NOW - timedelta(days=2)}, "past", "This appointment has passed."),
    "did_not_attend": (
        {"status": "did_not_attend", "starts_at": NOW - timedelta(days=2)},
        "past",
        "This appointment has passed.",
    ),
    "cancel_requested": (
        {"request_state": "cancel_requested"},
        "pending",
        "You have asked to cancel this appointment.",
    ),
}


@pytest.mark.parametrize("case", list(FORBIDDEN))
async def test_no_change_allowed(hub: Harness, case: str) -> None:
    fields, why_not, words = FORBIDDEN[case]
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, **fields)
    await hub.sign_in()

    html = await page(hub, f"/appointments/{appointment_id}")
    assert actions_on(html, appointment_id) == {"confirm": False, "rebook": False, "cancel": False}
    assert words in html
    assert PHONE in html and TEL in html

    before = await snapshot(hub)
    refused = f"/appointments/{appointment_id}?refused={why_not}"
    for form_page in ("rebook", "cancel"):
        assert location(await hub.client.get(f"/appointments/{appointment_id}/{form_page}")) == refused
    assert location(await post(hub, f"/appointments/{appointment_id}/confirm")) == refused
    assert location(await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "r"})) == refused
    response = await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    if case == "cancel_requested":
        # Already asked: pressing again is the same request, not a new one.
        assert location(response) == f"/appointments/{appointment_id}?done=cancel"
    else:
        assert location(response) == refused
    assert await snapshot(hub) == before
    assert "That change could not be made." in await page(hub, refused)


async def test_inside_the_cutoff_only_confirming_is_offered(hub: Harness) -> None:
    # Issue 13 (8): after the day-before reminder the patient can still confirm; changes go by phone.
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, starts_at=NOW + timedelta(hours=23, minutes=59))
    await hub.sign_in()
    html = await page(hub, f"/appointments/{appointment_id}")
    assert actions_on(html, appointment_id) == {"confirm": True, "rebook": False, "cancel": False}
    assert "less than 24 hours away, so it cannot be changed online" in html and TEL in html
    before = await snapshot(hub)
    refused = f"/appointments/{appointment_id}?refused=cutoff"
    for form_page in ("rebook", "cancel"):
        assert location(await hub.client.get(f"/appointments/{appointment_id}/{form_page}")) == refused
    assert location(await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "r"})) == refused
    assert location(await post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})) == refused
    assert await snapshot(hub) == before
    confirmed = await post(hub, f"/appointments/{appointment_id}/confirm")
    assert location(confirmed) == f"/appointments/{appointment_id}?done=confirmed"
    row = await hub.db.fetch_one("SELECT request_state FROM appointments WHERE id = ?", (appointment_id,))
    assert row == {"request_state": "confirmed"}


async def test_cutoff_is_a_setting(make_hub: MakeHub) -> None:
    hub = await make_hub(change_cutoff_hours=48)
    patient = await hub.create_patient()
    soon = await hub.create_appointment(patient_id=patient, starts_at=NOW + timedelta(hours=47))
    later = await hub.create_appointment(patient_id=patient, starts_at=NOW + timedelta(hours=49))
    await hub.sign_in()
    html = await page(hub, f"/appointments/{soon}")
    assert "less than 48 hours away" in html
    assert actions_on(html, soon) == {"confirm": True, "rebook": False, "cancel": False}
    assert actions_on(await page(hub, f"/appointments/{later}"), later) == {
        "confirm": True,
        "rebook": True,
        "cancel": True,
    }
    before = await snapshot(hub)
    assert location(await post(hub, f"/appointments/{soon}/cancel", {"reason": "other"})) == (
        f"/appointments/{soon}?refused=cutoff"
    )
    assert await snapshot(hub) == before


async def test_an_open_rebook_request_cannot_be_updated_inside_the_cutoff(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(
        patient_id=patient, starts_at=NOW + timedelta(hours=5), request_state="rebook_requested"
    )
    await hub.create_task(
        patient_id=patient, appointment_id=appointment_id, reason="Away", created_at=NOW - timedelta(days=2)
    )
    await hub.sign_in()
    before = await snapshot(hub)
    refused = f"/appointments/{appointment_id}?refused=cutoff"
    assert location(await hub.client.get(f"/appointments/{appointment_id}/rebook")) == refused
    assert location(await post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Still away"})) == refused
    assert await snapshot(hub) == before


async def test_the_appointment_passing_closes_actions_on_an_open_page(make_hub: MakeHub) -> None:
    hub = await make_hub(session_idle_minutes=3000, session_absolute_minutes=6000)
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, starts_at=NOW + timedelta(hours=25))
    await hub.sign_in()
    form_token = await hub.csrf(f"/appointments/{appointment_id}")
    hub.clock.advance(hours=2)  # the patient leaves the page open; now inside the cut-off
    before = await snapshot(hub)
    data = {"csrf_token": form_token, "reason": "other"}
    response = await hub.client.post(f"/appointments/{appointment_id}/cancel", data=data)
    assert location(response) == f"/appointments/{appointment_id}?refused=cutoff"
    hub.clock.advance(hours=24)  # and now it has started
    response = await hub.client.post(f"/appointments/{appointment_id}/confirm", data={"csrf_token": form_token})
    assert location(response) == f"/appointments/{appointment_id}?refused=past"
    assert await snapshot(hub) == before


@pytest.mark.parametrize(
    ("action", "data"), [("confirm", {}), ("rebook", {"reason": "r"}), ("cancel", {"reason": "other"})]
)
async def test_actions_without_the_csrf_token_change_nothing(hub: Harness, action: str, data: dict[str, str]) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    before = await snapshot(hub)
    for token in ({}, {"csrf_token": "0" * 64}):
        response = await hub.client.post(f"/appointments/{appointment_id}/{action}", data={**data, **token})
        assert response.status_code == 403
        check_page(response.text)
    assert await snapshot(hub) == before
