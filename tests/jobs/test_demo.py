"""The demo's data: seeded once, on either database, with patients a newcomer can sign in as straight away."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest

from hub.clock import format_date, format_time, from_db, london
from hub.jobs.demo import PATIENTS, demo_instructions, seed_demo
from hub.links import read_link_token
from hub.rules.validation import nhs_number_is_valid
from tests.harness import Harness
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio


async def test_the_demo_is_seeded_once(hub: Harness) -> None:
    assert await seed_demo(hub.db, now=hub.clock.now())
    counts = {
        table: (await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table}") or {})["n"]
        for table in ("organisations", "sites", "patients", "appointments", "letters", "outbox_messages")
    }
    assert counts["organisations"] == 1 and counts["sites"] == 2 and counts["patients"] == len(PATIENTS)
    assert counts["appointments"] and counts["letters"] and counts["outbox_messages"]
    assert not await seed_demo(hub.db, now=hub.clock.now())
    again = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM patients")
    assert again == {"n": len(PATIENTS)}


async def test_a_demo_patient_signs_in_and_sees_their_appointments_and_letters(hub: Harness) -> None:
    await seed_demo(hub.db, now=hub.clock.now())
    await hub.sign_in("07700 900001", "1948-03-14")  # Margaret Jones, as the instructions print her
    appointments = await hub.get_page("/appointments")
    assert "Cardiology outpatients" in appointments.text and "Blood tests" in appointments.text
    letters = await hub.get_page("/letters")
    assert "Your cardiology appointment" in letters.text
    messages = await hub.get_page("/messages")
    assert "Delivered" in messages.text


async def test_the_instructions_give_every_patients_details_and_their_own_stable_link(hub: Harness) -> None:
    await seed_demo(hub.db, now=hub.clock.now())
    ids = {r["mrn"]: r["link_id"] for r in await hub.db.fetch_all("SELECT link_id, mrn FROM patients")}
    text = demo_instructions(hub.settings, ids)
    assert f"read the code at {hub.settings.base_url}/dev/outbox" in text
    for mrn, given, family, born, mobile, email, uvc, _ in PATIENTS:
        contact = "0" + mobile[3:] if mobile else email
        line = f"  {given} {family}: {contact}, born {born}  (verification code {uvc})"
        assert line in text.splitlines()
        link = text.splitlines()[text.splitlines().index(line) + 1]
        token = re.fullmatch(rf"    stable link: {re.escape(hub.settings.base_url)}/p/(\S+)", link)
        assert token and read_link_token(hub.settings, token.group(1)) == ids[mrn]
        assert re.fullmatch("[0-9a-f]{32}", ids[mrn] or "")  # a link id of its own, never none
        assert (await hub.client.get(f"/p/{token.group(1)}")).status_code == 200


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 25, 0, 42, tzinfo=UTC),  # a Wednesday just after midnight: the blood test fell at 8:42pm
        datetime(2026, 11, 27, 19, 30, tzinfo=UTC),  # a Friday evening
        datetime(2026, 11, 28, 12, 0, tzinfo=UTC),  # a Saturday
        datetime(2027, 3, 27, 23, 50, tzinfo=UTC),  # the Saturday night the clocks go forward
    ],
)
async def test_demo_clinics_run_on_weekdays_in_clinic_hours(hub: Harness, now: datetime) -> None:
    await seed_demo(hub.db, now=now)
    rows = await hub.db.fetch_all("SELECT ref, starts_at, duration_minutes, status FROM appointments")
    rows += await hub.db.fetch_all("SELECT ref, starts_at, duration_minutes, status FROM slots")
    for row in rows:
        start = london(from_db(row["starts_at"]))
        end = start + timedelta(minutes=row["duration_minutes"])
        assert start.weekday() < 5, (row["ref"], start)
        assert time(8, 30) <= start.time() and end.time() <= time(17, 0) and end.date() == start.date(), row["ref"]
        assert start.minute % 5 == 0 and start.second == 0, (row["ref"], start)
    blood = await hub.db.fetch_one("SELECT starts_at FROM appointments WHERE clinic = 'Blood tests'")
    assert blood is not None and from_db(blood["starts_at"]) > now  # still to come, and the soonest
    booked = [from_db(r["starts_at"]) for r in rows if r["status"] == "booked" and from_db(r["starts_at"]) > now]
    assert from_db(blood["starts_at"]) == min(booked)


async def test_demo_patients_have_valid_nhs_numbers_and_letters_in_words(hub: Harness) -> None:
    await seed_demo(hub.db, now=datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    patients = await hub.db.fetch_all("SELECT mrn, nhs_number FROM patients ORDER BY mrn")
    assert len(patients) == len(PATIENTS)
    for patient in patients:
        number = patient["nhs_number"] or ""
        assert nhs_number_is_valid(number), patient  # 10 digits, modulus 11 check digit
    # The twins, who had none, come from the 999 range kept for testing.
    assert {p["nhs_number"][:3] for p in patients if p["mrn"] in ("RF100003", "RF100004")} == {"999"}
    letters = await hub.db.fetch_all(
        "SELECT l.content, a.starts_at FROM letters l JOIN appointments a ON a.id = l.appointment_id"
        " WHERE l.ref = 'L1002'"
    )
    text = letters[0]["content"].decode("cp1252")
    assert "Dear patient" not in text and "A1002" not in text
    assert "Dear Margaret Jones" in text
    when = from_db(letters[0]["starts_at"])
    assert format_date(when) in text and format_time(when) in text and "Eye clinic" in text


async def test_an_agent_finds_each_demo_patient_by_nhs_number(hub: Harness) -> None:
    await seed_demo(hub.db, now=hub.clock.now())
    await set_up_staff(hub)
    for mrn, given, family, *_ in PATIENTS:
        row = await hub.db.fetch_one("SELECT id, nhs_number FROM patients WHERE mrn = ?", (mrn,))
        assert row is not None and row["nhs_number"], mrn
        spaced = f"{row['nhs_number'][:3]} {row['nhs_number'][3:6]} {row['nhs_number'][6:]}"
        page = await hub.client.get("/staff/patients", params={"nhs_number": spaced})
        assert f'<a href="/staff/patients/{row["id"]}">{given} {family}</a>' in page.text, mrn
