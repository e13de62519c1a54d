from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import vobject

from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio

BEFORE_CHANGES = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

# Both sides of the October 2026 change (Sun 25 Oct, 02:00 BST -> 01:00 GMT), in and around the repeated hour,
# and both sides of the March 2027 change (Sun 28 Mar, 01:00 GMT -> 02:00 BST).
CLOCK_CHANGE_STARTS = [
    datetime(2026, 10, 24, 8, 30, tzinfo=UTC),  # Saturday 9:30 BST
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 01:30 BST, first pass of the repeated hour
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 01:30 GMT, second pass
    datetime(2026, 10, 25, 2, 0, tzinfo=UTC),  # 02:00 GMT
    datetime(2026, 10, 26, 9, 30, tzinfo=UTC),  # Monday 9:30 GMT
    datetime(2027, 3, 27, 9, 30, tzinfo=UTC),  # Saturday 9:30 GMT
    datetime(2027, 3, 28, 0, 30, tzinfo=UTC),  # 00:30 GMT, just before
    datetime(2027, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 BST, just after
    datetime(2027, 3, 29, 8, 30, tzinfo=UTC),  # Monday 9:30 BST
]


def parse(response: httpx.Response) -> Any:
    # vobject, not icalendar (which writes the file), so a fault shared by writer and reader cannot hide.
    return vobject.readOne(response.content.decode("utf-8"))


def events_of(response: httpx.Response) -> list[Any]:
    return list(parse(response).vevent_list)


def utc(value: datetime) -> datetime:
    assert value.tzinfo is not None
    return value.astimezone(UTC)


def assert_calendar_response(response: httpx.Response, filename: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert response.headers["cache-control"] == "no-store"


async def download(hub: Harness, appointment_id: int) -> Any:
    response = await hub.client.get(f"/appointments/{appointment_id}.ics")
    assert_calendar_response(response, f"appointment-{appointment_id}.ics")
    [event] = events_of(response)
    return event


async def test_one_appointment_downloads_as_a_calendar_file(hub: Harness) -> None:
    patient = await hub.create_patient()
    start = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    appointment_id = await hub.create_appointment(patient_id=patient, starts_at=start, duration_minutes=45)
    await hub.sign_in()

    event = await download(hub, appointment_id)
    assert utc(event.dtstart.value) == start
    assert utc(event.dtend.value) == start + timedelta(minutes=45)
    assert event.summary.value == "Hospital appointment"
    assert event.status.value == "CONFIRMED"
    assert event.sequence.value == "0"
    assert event.url.value == await hub.patient_link(patient)
    assert event.location.value == "Royal Free Hospital, Pond Street, London, NW3 2QG"
    assert await hub.patient_link(patient) in event.description.value
    [alarm] = event.valarm_list
    assert alarm.action.value == "DISPLAY"
    assert alarm.trigger.value == timedelta(days=-1)


async def test_instants_on_both_sides_of_the_clock_changes(hub: Harness) -> None:
    hub.clock.set(BEFORE_CHANGES)
    patient = await hub.create_patient()
    ids = {await hub.create_appointment(patient_id=patient, starts_at=start): start for start in CLOCK_CHANGE_STARTS}
    await hub.sign_in()

    for appointment_id, start in ids.items():
        event = await download(hub, appointment_id)
        assert (utc(event.dtstart.value), utc(event.dtend.value)) == (start, start + timedelta(minutes=30))

    response = await hub.client.get("/appointments.ics")
    assert_calendar_response(response, "appointments.ics")
    starts = sorted(utc(e.dtstart.value) for e in events_of(response))
    assert starts == sorted(CLOCK_CHANGE_STARTS)


async def test_the_uid_is_stable_and_one_per_appointment(hub: Harness) -> None:
    patient = await hub.create_patient()
    first = await hub.create_appointment(patient_id=patient)
    second = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(days=20))
    await hub.sign_in()

    uid = (await download(hub, first)).uid.value
    assert (await download(hub, first)).uid.value == uid
    assert f"appointment-{first}@" in uid
    other = (await download(hub, second)).uid.value
    assert other != uid
    everything = events_of(await hub.client.get("/appointments.ics"))
    assert sorted(e.uid.value for e in everything) == sorted([uid, other])


async def test_sequence_is_the_appointments_and_rises_with_an_immediate_cancel(make_hub: MakeHub) -> None:
    hub = await make_hub(cancel_mode="immediate")
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, sequence=3)
    await hub.sign_in()
    event = await download(hub, appointment_id)
    uid = event.uid.value
    assert (event.sequence.value, event.status.value) == ("3", "CONFIRMED")

    response = await hub.post_form(
        f"/appointments/{appointment_id}/cancel", {"reason": "no_longer_needed"}, csrf_from="/preferences"
    )
    assert response.status_code == 303
    event = await download(hub, appointment_id)
    assert (event.uid.value, event.sequence.value, event.status.value) == (uid, "4", "CANCELLED")
    assert list(event.contents.get("valarm", [])) == []
    # "All your upcoming appointments" leaves it out: a calendar importing a CANCELLED event it never had shows it.
    assert "BEGIN:VEVENT" not in (await hub.client.get("/appointments.ics")).text


async def test_cancelled_appointment_is_marked_cancelled(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient, status="cancelled", sequence=2)
    await hub.sign_in()
    event = await download(hub, appointment_id)
    assert (event.status.value, event.sequence.value) == ("CANCELLED", "2")


async def test_all_appointments_file_has_only_what_is_still_to_come(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002", verification_code="PX2B9Z")
    now = hub.clock.now()
    coming = await hub.create_appointment(patient_id=patient, starts_at=now + timedelta(days=2))
    ongoing = await hub.create_appointment(patient_id=patient, starts_at=now - timedelta(minutes=10))
    await hub.create_appointment(patient_id=patient, starts_at=now - timedelta(days=2))
    await hub.create_appointment(patient_id=other, starts_at=now + timedelta(days=3))
    await hub.create_appointment(patient_id=patient, starts_at=now + timedelta(days=4), status="cancelled")
    await hub.sign_in()
    response = await hub.client.get("/appointments.ics")
    assert_calendar_response(response, "appointments.ics")
    uids = sorted(e.uid.value.split("@")[0] for e in events_of(response))
    assert uids == sorted([f"appointment-{coming}", f"appointment-{ongoing}"])


async def test_summary_is_neutral_unless_the_clinic_is_switched_on(make_hub: MakeHub) -> None:
    for show, summary in ((False, "Hospital appointment"), (True, "Hospital appointment: Sexual health clinic")):
        hub = await make_hub(calendar_show_clinic=show)
        patient = await hub.create_patient()
        appointment_id = await hub.create_appointment(
            patient_id=patient, clinic="Sexual health clinic", specialty="Genitourinary medicine"
        )
        await hub.sign_in()
        response = await hub.client.get(f"/appointments/{appointment_id}.ics")
        [event] = events_of(response)
        assert event.summary.value == summary
        assert event.valarm.description.value == summary
        assert (b"Sexual health" in response.content) is show
        assert b"Genitourinary" not in response.content
        all_response = await hub.client.get("/appointments.ics")
        assert [e.summary.value for e in events_of(all_response)] == [summary]


async def test_remote_appointments_have_no_location(hub: Harness) -> None:
    patient = await hub.create_patient()
    phone = await hub.create_appointment(patient_id=patient, mode="telephone")
    video = await hub.create_appointment(patient_id=patient, mode="video")
    await hub.sign_in()
    for appointment_id in (phone, video):
        event = await download(hub, appointment_id)
        assert "location" not in event.contents


async def test_signed_out_download_goes_to_the_start(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    for path in (f"/appointments/{appointment_id}.ics", "/appointments.ics"):
        response = await hub.client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/"), path
        assert "BEGIN:VCALENDAR" not in response.text


async def test_another_patients_appointment_file_is_not_found(hub: Harness) -> None:
    await hub.create_patient()
    theirs = await hub.create_patient(mobile="+447700900002", verification_code="PX2B9Z")
    appointment_id = await hub.create_appointment(patient_id=theirs)
    await hub.sign_in()
    response = await hub.client.get(f"/appointments/{appointment_id}.ics")
    assert response.status_code == 404
    assert "BEGIN:VCALENDAR" not in response.text
