"""The hospital's events sent to a fake PAS over real MLLP/TCP: a patient's action through the web app, the worker's
HL7 job, and the SRM the PAS receives; AE/AR as tasks; dropped connections retried in order."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.jobs import hl7_send
from hub.jobs.hl7_listener import make_receiver
from hub.jobs.hl7_send import Hl7Sender, make_sender, send_once
from hub.settings import SettingsError, load_settings
from hub.store.events import record_event
from hub.vocabulary import EventKind
from tests.conftest import SECRET, MakeHub
from tests.fake_pas import FakePas
from tests.harness import Harness
from tests.hl7_samples import SETTINGS, siu
from tests.jobs.test_hl7_listener import _self_signed
from tests.pages import check_page
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio


@pytest.fixture
def pas() -> Iterator[FakePas]:
    with FakePas().running() as fake:
        yield fake


def outbound(pas: FakePas, **more: Any) -> dict[str, Any]:
    return {
        **SETTINGS,
        "hl7.outbound.enabled": True,
        "hl7.outbound.organisation": "RAL",
        "hl7.outbound.host": "127.0.0.1",
        "hl7.outbound.port": pas.port,
        "hl7.outbound.timeout_seconds": 1,
        "hl7.outbound.receiving_application": "MEDWAY",
        "hl7.outbound.receiving_facility": "RFH_PAS",
        **more,
    }


async def trust(make_hub: MakeHub, pas: FakePas, **more: Any) -> tuple[Harness, Hl7Sender]:
    hub = await make_hub(**outbound(pas, **more))
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    sender = await make_sender(hub.db, hub.settings)
    assert sender is not None
    return hub, sender


async def booked_over_hl7(hub: Harness) -> int:
    """APT-1001 (placer and filler ids APT-1001^RFH) for Margaret Jones, booked by an SIU^S12."""
    receiver = await make_receiver(hub.db, hub.settings, hub.clock)
    answer = await receiver.receive(siu().encode())
    assert "MSA|AA|" in answer, answer
    row = await hub.db.fetch_one("SELECT id FROM appointments WHERE ref = 'APT-1001'")
    assert row is not None
    return int(row["id"])


async def press(hub: Harness, appointment_id: int, action: str, data: dict[str, str] | None = None) -> None:
    response = await hub.post_form(f"/appointments/{appointment_id}/{action}", data or {}, csrf_from="/preferences")
    assert response.status_code == 303, response.text


async def events(hub: Harness) -> list[tuple[int, str]]:
    rows = await hub.db.fetch_all("SELECT id, kind FROM events ORDER BY id")
    return [(int(r["id"]), r["kind"]) for r in rows]


async def test_a_patients_confirm_and_cancel_reach_the_pas_as_srm_s03_then_s04(make_hub: MakeHub, pas: FakePas) -> None:
    hub, sender = await trust(make_hub, pas)
    appointment_id = await booked_over_hl7(hub)
    await hub.sign_in()
    await press(hub, appointment_id, "confirm")
    await press(hub, appointment_id, "cancel", {"reason": "feeling_better", "details": "Much better now"})
    sent = await events(hub)
    assert [k for _, k in sent] == ["appointment.confirmed", "appointment.cancel_requested"]

    assert await send_once(hub.db, sender, hub.clock) == 2

    controls = [f"HUBE{i}" for i, _ in sent]
    assert pas.applied == controls and pas.arrivals == controls
    confirm, cancel = controls
    msh = pas.segments(confirm, "MSH")[0]
    assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == ("HUB", "HUB", "MEDWAY", "RFH_PAS")
    assert str(msh[9]) == "SRM^S03^SRM_S01" and str(msh[10]) == confirm and str(msh[12]) == "2.5.1"
    assert pas.field(confirm, "ARQ", 1) == "APT-1001^RFH" and pas.field(confirm, "ARQ", 2) == "APT-1001^RFH"
    assert pas.field(confirm, "ARQ", 6) == "appointment.confirmed^Patient confirmed^HUB"
    assert pas.field(confirm, "PID", 3) == "RF1234567^^^RFH_PAS^MR~9434765919^^^NHS^NH"
    assert pas.field(confirm, "PID", 5) == "Jones^Margaret" and pas.field(confirm, "PID", 7) == "19480314"
    assert pas.field(confirm, "AIS", 4) == pas.field(confirm, "AIL", 6) == "20261214093000+0000"
    assert pas.field(confirm, "AIL", 3) == "RFH-OPD"  # the PAS's location code, from hl7.locations
    assert [str(s[0]) for s in pas.messages[confirm]] == ["MSH", "ARQ", "PID", "RGS", "AIS", "AIL"]

    assert str(pas.segments(cancel, "MSH")[0][9]) == "SRM^S04^SRM_S01"
    assert pas.field(cancel, "ARQ", 6).startswith("appointment.cancel_requested^")
    assert pas.field(cancel, "ARQ", 7) == "^feeling_better"
    notes = [str(s[3]) for s in pas.segments(cancel, "NTE")]
    assert notes == ["details: Much better now", "reason: feeling_better"]

    deliveries = await hub.db.fetch_all("SELECT event_id, control_id, message_type, ack_code FROM hl7_deliveries")
    assert [(d["control_id"], d["message_type"], d["ack_code"]) for d in deliveries] == [
        (confirm, "SRM^S03", "AA"),
        (cancel, "SRM^S04", "AA"),
    ]
    # Nothing more to send: nothing is sent twice.
    assert await send_once(hub.db, sender, hub.clock) == 0
    assert pas.arrivals == controls


async def test_an_ae_or_ar_is_recorded_as_a_task_and_the_next_event_still_goes(make_hub: MakeHub, pas: FakePas) -> None:
    hub, sender = await trust(make_hub, pas)
    patient = await hub.create_patient(mrn="RF1")
    first = await hub.create_appointment(patient_id=patient, ref="A1")
    second = await hub.create_appointment(patient_id=patient, ref="A2")
    await hub.sign_in()
    await press(hub, first, "confirm")
    await press(hub, second, "confirm")
    pas.script[:] = ["AE"]

    assert await send_once(hub.db, sender, hub.clock) == 2

    (one, _), (two, _) = await events(hub)
    assert pas.arrivals == [f"HUBE{one}", f"HUBE{two}"] and pas.applied == [f"HUBE{two}"]
    codes = await hub.db.fetch_all("SELECT event_id, ack_code, ack_text FROM hl7_deliveries ORDER BY event_id")
    assert [(c["event_id"], c["ack_code"]) for c in codes] == [(one, "AE"), (two, "AA")]
    assert "no such appointment" in codes[0]["ack_text"]
    tasks = await hub.db.fetch_all("SELECT kind, appointment_id, status, source_id, reason FROM tasks")
    assert [(t["kind"], t["appointment_id"], t["status"], t["source_id"]) for t in tasks] == [
        ("hl7_refused", first, "open", one)
    ]
    assert "AE" in tasks[0]["reason"] and "SRM^S03" in tasks[0]["reason"]
    audit = await hub.db.fetch_all("SELECT action, record_id FROM audit_events WHERE action = 'hl7_refused'")
    assert audit == [{"action": "hl7_refused", "record_id": str(first)}]
    # The booking centre sees it in the queue, under its own name, and can open it.
    await set_up_staff(hub)
    queue = await hub.client.get("/staff?kind=hl7_refused")
    check_page(queue.text)
    assert 'data-kind="hl7_refused"' in queue.text and "Hospital system refused an update" in queue.text
    task = await hub.db.fetch_one("SELECT id FROM tasks")
    assert task is not None
    page = await hub.client.get(f"/staff/tasks/{task['id']}")
    assert page.status_code == 200
    check_page(page.text)
    assert "no such appointment" in page.text


class _CarelessPas(FakePas):
    """A PAS whose refusal's text holds control characters: an escaped NUL (which PostgreSQL cannot store) and a raw
    one."""

    def _ack(self, message: Any, code: str) -> bytes:
        return super()._ack(message, code).replace(b"no such appointment", b"no such\\X00\\ appoint\x01ment")


async def test_control_characters_in_the_pas_answer_are_not_stored(make_hub: MakeHub) -> None:
    with _CarelessPas(script=["AE"]).running() as pas:
        hub, sender = await trust(make_hub, pas)
        patient = await hub.create_patient(mrn="RF1")
        appointment = await hub.create_appointment(patient_id=patient, ref="A1")
        await hub.sign_in()
        await press(hub, appointment, "confirm")
        assert await send_once(hub.db, sender, hub.clock) == 1
    [delivery] = await hub.db.fetch_all("SELECT ack_code, ack_text FROM hl7_deliveries")
    assert delivery["ack_code"] == "AE" and "no such appointment" in delivery["ack_text"]
    [task] = await hub.db.fetch_all("SELECT reason FROM tasks")
    assert "no such appointment" in task["reason"]


async def test_a_dropped_connection_is_retried_after_a_backoff_and_nothing_later_overtakes_it(
    make_hub: MakeHub, pas: FakePas
) -> None:
    hub, sender = await trust(make_hub, pas)
    appointment_id = await booked_over_hl7(hub)
    await hub.sign_in()
    await press(hub, appointment_id, "confirm")
    await press(hub, appointment_id, "rebook", {"reason": "Away", "preferred_times": "Mornings"})
    (one, _), (two, _) = await events(hub)
    pas.script[:] = ["drop", "drop_after_apply", "silent"]

    # Dropped before applying, applied but unanswered, then no answer at all: each a retry of the first event.
    for n, wait in enumerate((5, 10, 20), start=1):
        assert await send_once(hub.db, sender, hub.clock) == 0
        row = await hub.db.fetch_one("SELECT attempts, next_attempt_at, last_event_id FROM hl7_outbound")
        assert row is not None and row["attempts"] == n
        assert await send_once(hub.db, sender, hub.clock) == 0  # not yet due
        hub.clock.advance(seconds=wait)
    assert pas.arrivals == [f"HUBE{one}"] * 3

    assert await send_once(hub.db, sender, hub.clock) == 2
    assert pas.arrivals == [f"HUBE{one}"] * 4 + [f"HUBE{two}"]
    assert pas.applied == [f"HUBE{one}", f"HUBE{two}"]  # the resend was a duplicate to the PAS, not applied again
    rows = await hub.db.fetch_all("SELECT event_id, attempts, ack_code FROM hl7_deliveries ORDER BY event_id")
    assert [(r["event_id"], r["attempts"], r["ack_code"]) for r in rows] == [(one, 4, "AA"), (two, 1, "AA")]
    assert await hub.db.fetch_all("SELECT id FROM tasks WHERE kind = 'hl7_refused'") == []


async def test_events_with_no_appointment_are_passed_over_and_the_cursor_starts_at_the_newest(
    make_hub: MakeHub, pas: FakePas
) -> None:
    hub = await make_hub(**outbound(pas))
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    patient = await hub.create_patient(mrn="RF1")
    before = await hub.create_appointment(patient_id=patient, ref="A0")
    await hub.sign_in()
    await press(hub, before, "confirm")  # before sending was turned on: the JSON feed's
    sender = await make_sender(hub.db, hub.settings)
    assert sender is not None
    async with hub.db.write() as tx:  # a text to the hub: about the patient, no appointment
        await record_event(
            tx,
            at=hub.clock.now(),
            kind=EventKind.PATIENT_MESSAGE_RECEIVED,
            organisation_id=await hub.organisation_id(),
            patient_id=patient,
        )
    appointment_id = await hub.create_appointment(patient_id=patient, ref="A1")
    await press(hub, appointment_id, "confirm")

    assert await send_once(hub.db, sender, hub.clock) >= 1
    kinds = dict(await events(hub))
    assert [kinds[int(c[4:])] for c in pas.arrivals] == ["appointment.confirmed"]
    assert pas.field(pas.arrivals[0], "ARQ", 2) == "A1"
    row = await hub.db.fetch_one("SELECT last_event_id FROM hl7_outbound")
    assert row is not None and row["last_event_id"] == max(kinds)


async def test_settings_are_checked_before_anything_is_sent(make_hub: MakeHub, pas: FakePas) -> None:
    with pytest.raises(SettingsError, match="HUB_HL7__OUTBOUND__HOST"):
        load_settings(
            environ={}, overrides={"secret_key": SECRET, "hl7.outbound.enabled": True, "hl7.outbound.organisation": "X"}
        )
    with pytest.raises(SettingsError, match="retry_max_seconds"):
        load_settings(environ={}, overrides={"secret_key": SECRET, "hl7.outbound.retry_max_seconds": 1})
    hub = await make_hub(**outbound(pas, **{"hl7.outbound.organisation": "NOPE"}))
    with pytest.raises(SettingsError, match="NOPE"):
        await make_sender(hub.db, hub.settings)
    off = await make_hub()
    assert await make_sender(off.db, off.settings) is None


async def test_mllp_over_tls_checks_the_pas_certificate(make_hub: MakeHub, tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    with FakePas(tls=context).running() as pas:
        tls = {"hl7.outbound.host": "localhost", "hl7.outbound.tls": True}
        hub, sender = await trust(make_hub, pas, **tls, **{"hl7.outbound.tls_ca_file": str(cert_file)})
        patient = await hub.create_patient(mrn="RF1")
        appointment_id = await hub.create_appointment(patient_id=patient, ref="A1")
        await hub.sign_in()
        await press(hub, appointment_id, "confirm")
        assert await send_once(hub.db, sender, hub.clock) == 1
        assert len(pas.applied) == 1

        # A PAS whose certificate the hub cannot trust (the system's CAs) is never sent anything.
        other, untrusting = await trust(make_hub, pas, **tls)
        patient = await other.create_patient(mrn="RF1")
        appointment_id = await other.create_appointment(patient_id=patient, ref="A1")
        await other.sign_in()
        await press(other, appointment_id, "confirm")
        assert await send_once(other.db, untrusting, other.clock) == 0
        row = await other.db.fetch_one("SELECT attempts, last_error FROM hl7_outbound")
        assert row == {"attempts": 1, "last_error": "SSLCertVerificationError"}
        assert len(pas.arrivals) == 1


async def test_a_round_stops_sending_after_its_time_so_the_other_jobs_run(
    make_hub: MakeHub, pas: FakePas, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, sender = await trust(make_hub, pas)
    patient = await hub.create_patient(mrn="RF1")
    appointments = [await hub.create_appointment(patient_id=patient, ref=f"A{n}") for n in range(3)]
    await hub.sign_in()
    for appointment_id in appointments:
        await press(hub, appointment_id, "confirm")
    monkeypatch.setattr(hl7_send, "ROUND_SECONDS", 0.0)  # every exchange takes longer than that
    assert [await send_once(hub.db, sender, hub.clock) for _ in range(4)] == [1, 1, 1, 0]
    assert pas.applied == [f"HUBE{i}" for i, _ in await events(hub)]
