"""The list of appointments is remembered by everything it is made from (hub.web.remembered_pages): asked for again
unchanged, it is not rendered again; whatever changes it, from wherever (the hospital's feed, the patient's own
cancel, a letter written by another process, the clock passing an appointment, another session or another
patient), is on the next one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import to_db
from hub.web.common import Hub
from tests.harness import Harness
from tests.pages import Page

pytestmark = pytest.mark.anyio
START = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)  # Thursday 3 December 2026, 9:30am in London


def pages_of(hub: Harness) -> Hub:
    return hub.app.state.hub


def text(page: Page) -> str:
    return " ".join("".join(page.document.itertext()).split())


def section(page: Page, heading: str) -> str:
    """The words from a heading to the next h2."""
    after = text(page).split(f"{heading} ", 1)[1]
    return after.split(" How we contact you", 1)[0]


async def api_put(hub: Harness, key: str, path: str, body: Mapping[str, object]) -> None:
    response = await hub.client.put(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


def appointment_body(**changes: object) -> dict[str, object]:
    body = {"patient_ref": "MRN1", "site_code": "RFH", "start": START.isoformat(), "duration_minutes": 30}
    return body | changes


async def signed_in_with_one(hub: Harness) -> tuple[int, int]:
    patient = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A1", starts_at=START)
    await hub.sign_in()
    return patient, appointment


async def test_the_same_list_again_is_not_rendered_again(hub: Harness) -> None:
    await signed_in_with_one(hub)
    pages = pages_of(hub).pages
    first = await hub.client.get("/appointments", headers={"Accept-Encoding": "gzip"})
    hits = pages.hits
    second = await hub.client.get("/appointments", headers={"Accept-Encoding": "gzip"})
    assert pages.hits == hits + 1
    assert first.status_code == second.status_code == 200
    assert second.headers["content-encoding"] == "gzip" and "accept-encoding" in second.headers["vary"].lower()
    assert first.content == second.content and "Thursday 3 December 2026 at 9:30am" in second.text
    # The security headers are every response's, remembered or not.
    assert second.headers["cache-control"] == first.headers["cache-control"]
    assert second.headers["content-security-policy"] == first.headers["content-security-policy"]


async def test_a_browser_that_takes_no_gzip_gets_the_same_page_plain(hub: Harness) -> None:
    await signed_in_with_one(hub)
    zipped = await hub.client.get("/appointments", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(zipped.content) / 2  # httpx unpacked it
    plain = await hub.client.get("/appointments", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and int(plain.headers["content-length"]) == len(plain.content)
    assert plain.content == zipped.content


async def test_a_hospital_cancel_and_a_new_time_are_on_the_next_list(hub: Harness) -> None:
    await signed_in_with_one(hub)
    key = await hub.create_api_key()
    assert "Thursday 3 December 2026 at 9:30am" in section(await hub.get_page("/appointments"), "Upcoming")
    await api_put(hub, key, "/api/v1/appointments/A1", appointment_body(start="2026-12-10T14:00:00+00:00"))
    moved = await hub.get_page("/appointments")
    assert "Thursday 10 December 2026 at 2pm" in section(moved, "Upcoming")
    assert "3 December" not in text(moved)
    cancel = appointment_body(start="2026-12-10T14:00:00+00:00", status="cancelled")
    await api_put(hub, key, "/api/v1/appointments/A1", cancel)
    cancelled = await hub.get_page("/appointments")
    assert "You have no upcoming appointments." in text(cancelled)
    assert "Thursday 10 December 2026 at 2pm" in section(cancelled, "Cancelled")


async def test_the_patients_own_cancel_is_on_the_next_list(hub: Harness) -> None:
    _, appointment = await signed_in_with_one(hub)
    assert "Booked" in text(await hub.get_page("/appointments"))
    asked = await hub.post_form(f"/appointments/{appointment}/cancel", {"reason": "feeling_better"})
    assert asked.status_code == 303, asked.text
    assert "Cancellation requested" in section(await hub.get_page("/appointments"), "Upcoming")


async def test_a_letter_written_elsewhere_and_a_new_name_are_on_the_next_list(hub: Harness) -> None:
    patient, appointment = await signed_in_with_one(hub)
    assert "Your cardiology letter" not in text(await hub.get_page("/appointments"))
    # Written straight to the database, as another process (the HL7 listener, the worker) would.
    await hub.create_letter(patient_id=patient, appointment_id=appointment, title="Your cardiology letter")
    with_letter = await hub.get_page("/appointments")
    assert "Your cardiology letter" in section(with_letter, "Letters") and "Unread letter" in text(with_letter)
    body = {"given_name": "Maggie", "family_name": "Jones", "date_of_birth": "1948-03-14", "mobile": "07700900001"}
    await api_put(hub, await hub.create_api_key(), "/api/v1/patients/MRN1", body)
    assert "Maggie Jones" in text(await hub.get_page("/appointments"))


async def test_an_appointment_the_clock_has_passed_moves_to_past(hub: Harness) -> None:
    await signed_in_with_one(hub)
    assert "You have no upcoming appointments." not in text(await hub.get_page("/appointments"))
    hub.clock.set(START + timedelta(minutes=31))  # it has ended; nothing in the database changed
    async with hub.db.write() as tx:  # the same session, kept alive to then
        await tx.execute("UPDATE sessions SET created_at = ?, last_seen_at = ?", (to_db(hub.clock.now()),) * 2)
    after = await hub.get_page("/appointments")
    assert "You have no upcoming appointments." in text(after)
    assert "Thursday 3 December 2026 at 9:30am" in section(after, "Past")


async def test_another_patient_or_session_is_never_given_the_remembered_page(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    first = await hub.create_patient(mrn="MRN1")
    await hub.create_appointment(patient_id=first, starts_at=START)
    twin = await hub.create_patient(mrn="MRN2", mobile="+447700900002", given_name="Peter")
    await hub.create_appointment(patient_id=twin, starts_at=START)
    theirs, again = new_browser(hub), new_browser(hub)
    await hub.sign_in()
    await theirs.sign_in(contact="07700 900002")
    await again.sign_in()  # Margaret again, in a second browser
    mine = await hub.get_page("/appointments")
    assert "Margaret Jones" in text(mine) and "Peter" not in text(mine)
    peter = await theirs.get_page("/appointments")
    assert "Peter Jones" in text(peter) and "Margaret" not in text(peter)
    # The same patient's own list in another browser carries that browser's token, not the first's.
    token = await hub.csrf("/sign-out")
    assert token not in (await again.client.get("/appointments")).text


async def test_after_signing_out_the_remembered_page_is_not_given(hub: Harness) -> None:
    await signed_in_with_one(hub)
    assert (await hub.client.get("/appointments")).status_code == 200
    signed_out = await hub.post_form("/sign-out", {}, csrf_from="/sign-out")
    assert signed_out.status_code == 303, signed_out.text
    again = await hub.client.get("/appointments")
    assert (again.status_code, again.headers["location"]) == (303, "/")


async def test_a_notice_the_page_does_not_show_makes_no_page_of_its_own(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    """Only ?done=offer_declined shows a notice: any other value is the same page, not another to remember, so
    one patient making up values cannot push everyone else's pages out."""
    await signed_in_with_one(hub)
    twin = await hub.create_patient(mrn="MRN2", mobile="+447700900002", given_name="Peter")
    await hub.create_appointment(patient_id=twin, starts_at=START)
    peter = new_browser(hub)
    await peter.sign_in(contact="07700 900002")
    pages = pages_of(hub).pages
    await hub.client.get("/appointments")
    made_up = {(await peter.client.get(f"/appointments?done=x{n}")).text for n in range(30)}
    assert len(made_up) == 1 and len(pages) == 2
    hits = pages.hits
    await hub.client.get("/appointments")  # Margaret's, still remembered
    assert pages.hits == hits + 1
    declined = await hub.get_page("/appointments?done=offer_declined")
    assert "You said no thanks. Your appointment has not changed." in text(declined)
