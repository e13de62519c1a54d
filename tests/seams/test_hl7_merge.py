"""HL7 ADT^A40 merging a patient who has an open earlier-appointment offer: the surviving record takes the offer
and the request with the appointment, and can take the slot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.clock import FixedClock
from hub.store.nhs_app import set_nhs_app_excluded
from hub.store.offers import accept_offer, list_open_offers, run_offers, set_earlier_request
from hub.store.slot_moves import Moved
from tests.conftest import MakeHub
from tests.fake_aggregator import FakeAggregator
from tests.fake_nhs_login import FakeNhsLogin
from tests.harness import Harness
from tests.hl7_listening import hl7_trust, listening
from tests.hl7_samples import Client, adt, merge, pid, siu
from tests.seams.conftest import POLICY, WINDOW, rows
from tests.web.fhir.conftest import CORRELATION, NHS_NUMBER, wayfinder_settings

pytestmark = pytest.mark.anyio


async def test_a_merged_patients_open_offer_goes_to_the_surviving_record(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        [appt] = await rows(trust, "SELECT id, patient_id FROM appointments")
        merged = appt["patient_id"]
        now = trust.clock.now()
        assert await set_earlier_request(trust.db, patient_id=merged, appointment_id=appt["id"], wanted=True, now=now)
        slot = await trust.create_slot(
            starts_at=datetime(2026, 11, 28, 9, 30, tzinfo=UTC), ref="FREED", clinician="Dr Anita Patel"
        )
        assert (await run_offers(trust.db, settings=trust.settings, now=now)).offered == 1
        assert (await client.send(merge("RF7654321", "RF1234567"))).code == "AA"
    [surviving] = await rows(trust, "SELECT id FROM patients WHERE mrn = 'RF7654321'")
    survivor = surviving["id"]
    assert await rows(trust, "SELECT patient_id FROM appointments") == [{"patient_id": survivor}]
    assert await rows(trust, "SELECT patient_id FROM earlier_requests") == [{"patient_id": survivor}]
    [offer] = await list_open_offers(trust.db, survivor, now=now)
    moved = await accept_offer(
        trust.db,
        patient_id=survivor,
        offer_id=offer["id"],
        now=now,
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert moved == Moved(True)
    assert await rows(trust, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "busy", "appointment_id": appt["id"]}
    ]


async def test_a_merge_ends_the_merged_records_live_session_and_the_patient_signs_in_to_the_survivor(
    trust: Harness, port: int
) -> None:
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        await trust.sign_in()
        [appt] = await rows(trust, "SELECT id FROM appointments")
        assert (await trust.client.get(f"/appointments/{appt['id']}")).status_code == 200
        assert (await client.send(merge("RF7654321", "RF1234567"))).code == "AA"
    ended = await trust.client.get(f"/appointments/{appt['id']}")
    assert (ended.status_code, ended.headers["location"]) == (303, "/")  # back to signing in
    await trust.sign_in()  # the same mobile and date of birth now reach the surviving record
    assert (await trust.client.get(f"/appointments/{appt['id']}")).status_code == 200
    [session] = await rows(trust, "SELECT patient_id FROM sessions WHERE ended_at IS NULL")
    assert await rows(trust, "SELECT mrn FROM patients WHERE id = ?", (session["patient_id"],)) == [
        {"mrn": "RF7654321"}
    ]


async def test_a_merged_records_text_held_overnight_goes_to_the_surviving_records_mobile(
    trust: Harness, port: int
) -> None:
    # 9pm: the PAS books on a duplicate record with an old mobile; the invitation waits for the morning.
    trust.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))
    survivor = {"mrn": "RF7654321", "nhs": "9434765870", "phones": "07700 900002^ORN^CP"}
    async with Client(port) as client:
        assert (await client.send(siu(sent="20261121210000"))).code == "AA"
        assert (await client.send(adt("A04", sent="20261121210500", **survivor))).code == "AA"
        assert (await client.send(merge("RF7654321", "RF1234567", sent="20261121211000"))).code == "AA"
    trust.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    await trust.send_queued()
    sent = await rows(trust, "SELECT kind, channel, recipient FROM dev_messages")
    assert sent == [{"kind": "invitation", "channel": "sms", "recipient": "+447700900002"}]


@pytest.mark.parametrize("excluded", [False, True])
async def test_the_nhs_app_finds_the_merged_records_appointments_unless_the_trust_excluded_it(
    make_hub: MakeHub, clock: FixedClock, excluded: bool
) -> None:
    # A temporary registration (no NHS number yet) is the record the PAS keeps; the one it merges away was traced,
    # and perhaps kept out of the NHS App by the trust.
    with FakeAggregator(now=clock.now) as aggregator, FakeNhsLogin(now=clock.now) as nhs_login:
        hub = await hl7_trust(make_hub, **wayfinder_settings(aggregator, nhs_login))
        async with listening(hub) as [port], Client(port) as client:
            assert (await client.send(siu())).code == "AA"  # RF1234567, NHS number 9434765919
            [traced] = await rows(hub, "SELECT id FROM patients")
            async with hub.db.write() as tx:
                await set_nhs_app_excluded(tx, patient_id=traced["id"], excluded=excluded, actor="pas", now=clock.now())
            assert (await client.send(adt("A04", mrn="RF7654321", nhs=""))).code == "AA"
            assert (await client.send(merge("RF7654321", "RF1234567"))).code == "AA"
        headers = {"Authorization": f"Bearer {aggregator.access_token()}", "NHSD-ID-Token": nhs_login.id_token()}
        found = await hub.client.get(
            "/fhir/r4/Appointment",
            params={"patient:identifier": f"https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"},
            headers={**headers, "X-Correlation-ID": CORRELATION},
        )
    assert found.status_code == 200, found.text
    assert found.json()["total"] == (0 if excluded else 1)
    assert await rows(hub, "SELECT mrn, nhs_number, nhs_app_excluded FROM patients ORDER BY mrn") == [
        {"mrn": "RF1234567", "nhs_number": None, "nhs_app_excluded": int(excluded)},
        {"mrn": "RF7654321", "nhs_number": NHS_NUMBER, "nhs_app_excluded": int(excluded)},
    ]


async def test_a_patient_who_turned_off_texts_and_emails_on_the_merged_record_gets_none_from_the_survivor(
    trust: Harness, port: int
) -> None:
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        await trust.sign_in()  # the merged record's: the patient chooses letters only
        await trust.send_queued()
        answer = await trust.post_form("/preferences", {"contact_preference": "sms", "paper": "yes", "digital": "no"})
        assert answer.status_code == 303, answer.text
        assert (await client.send(adt("A04", mrn="RF7654321", nhs="9434765870", control_id="A2"))).code == "AA"
        assert (await client.send(merge("RF7654321", "RF1234567"))).code == "AA"
        # The hospital books the patient again, on the record it kept.
        later = siu(ref="APT-2002", control_id="MSG00002", start="202612150930", patient=pid("RF7654321"))
        assert (await client.send(later)).code == "AA"
    await trust.send_queued()
    sent = await rows(trust, "SELECT kind, channel FROM dev_messages WHERE kind != 'security_code' ORDER BY id")
    assert sent == [{"kind": "invitation", "channel": "sms"}, {"kind": "invitation", "channel": "letter"}]
    # The survivor's choices changed with the merge: audited, field by field, as the hospital's act.
    [kept] = await rows(trust, "SELECT id FROM patients WHERE mrn = 'RF7654321'")
    [merged] = await rows(trust, "SELECT id FROM patients WHERE mrn = 'RF1234567'")
    assert await rows(
        trust, "SELECT actor_type, record_id, detail FROM audit_events WHERE action = 'patient_opt_out_set'"
    ) == [
        {
            "actor_type": "api_key",
            "record_id": str(kept["id"]),
            "detail": f"kept from merged patient {merged['id']}: opted_out on, paperless off",
        }
    ]
